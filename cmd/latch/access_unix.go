//go:build unix

package main

import "syscall"

// canReadWrite reports, without opening it, whether this process may read
// and write the file p (access(2) with R_OK|W_OK).
func canReadWrite(p string) error { return syscall.Access(p, 4|2) }

// canCreateIn reports whether this process may create entries in the
// directory p (W_OK|X_OK).
func canCreateIn(p string) error { return syscall.Access(p, 2|1) }
