// examples/ is not part of latch's Go module: npm's node_modules under it
// can hold Go files (flatted ships a golang/ package), which `go test ./...`,
// vet and staticcheck must not pick up. This file makes it a module of its
// own, with no Go code of latch's.
module github.com/latch-dev/latch/examples

go 1.26.0
