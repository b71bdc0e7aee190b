package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlags makes a FlagSet that prints its usage to w and returns errUsage
// (or nil for --help) instead of exiting.
func newFlags(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: latch %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; --help prints usage and reports done=true.
func parse(fs *flag.FlagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err != nil {
		return true, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "latch %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return true, errUsage
	}
	return false, nil
}
