package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
)

// walk emits the members of the tree at src in the order of Python's
// os.walk (top-down, not following symbolic links) filtered as barman's
// upload_directory does: a directory that the filter rejects is not
// stored and neither are the files directly in it, but its
// subdirectories are still visited and judged on their own. Symbolic links
// to directories are neither followed nor stored. Entries that vanish
// during the walk are skipped.
func walk(ctx context.Context, src string, f *Filter, emit func(*member) error) error {
	return walkDir(ctx, src, ".", f, emit)
}

func walkDir(ctx context.Context, dir, rel string, f *Filter, emit func(*member) error) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var dirs, files []string
	for _, e := range entries {
		switch {
		case e.IsDir():
			dirs = append(dirs, e.Name())
		case e.Type()&fs.ModeSymlink != 0:
			// os.walk counts a link to a directory as a directory, and
			// then does not descend into it.
			if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && st.IsDir() {
				continue
			}
			files = append(files, e.Name())
		default:
			files = append(files, e.Name())
		}
	}
	if f.Allowed(rel, true) {
		if err := emit(&member{name: rel, path: dir}); err != nil {
			return err
		}
		for _, name := range files {
			// Python's os.path.join(".", name) keeps the "./" prefix.
			memberName := rel + "/" + name
			if !f.Allowed(memberName, false) {
				continue
			}
			if err := emit(&member{name: memberName, path: filepath.Join(dir, name)}); err != nil {
				return err
			}
		}
	}
	for _, name := range dirs {
		childRel := name
		if rel != "." {
			childRel = rel + "/" + name
		}
		if err := walkDir(ctx, filepath.Join(dir, name), childRel, f, emit); err != nil {
			return err
		}
	}
	return nil
}

// run archives the members produce emits with the sink's jobs workers,
// each writing into its own part of the archive.
func (a *archive) run(ctx context.Context, produce func(emit func(*member) error) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan *member, 4*len(a.slots))
	var g errgroup.Group
	for i := range a.slots {
		g.Go(func() error {
			buf := make([]byte, copyBuffer)
			for m := range ch {
				if err := a.add(ctx, i, m, buf); err != nil {
					cancel(err)
					return err
				}
			}
			return nil
		})
	}
	perr := produce(func(m *member) error {
		select {
		case ch <- m:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(ch)
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return perr
}
