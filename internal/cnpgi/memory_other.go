//go:build !linux

package cnpgi

import "errors"

func pageOut(uintptr, uintptr) error { return errors.New("not supported") }
