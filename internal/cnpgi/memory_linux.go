package cnpgi

import "golang.org/x/sys/unix"

// pageOut asks the kernel to reclaim a range of the process's mappings
// (MADV_PAGEOUT, Linux 5.4+).
func pageOut(addr, length uintptr) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, length, unix.MADV_PAGEOUT); errno != 0 {
		return errno
	}
	return nil
}
