//go:build !unix

package authn

import "os"

// fileGroup reports no group where files have none in the Unix sense, so
// exposed treats a group-readable key as readable by others.
func fileGroup(os.FileInfo) (gid int, ok bool) { return 0, false }
