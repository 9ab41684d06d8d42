package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/fs"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			b, err := fs.Open(fs.Config{Root: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	})
}

func TestRejectsTraversal(t *testing.T) {
	b, err := fs.Open(fs.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "a/../../b", "/abs", "a//b", "dir/"} {
		err := b.Put(t.Context(), key, strings.NewReader("x"), 1, storage.PutOptions{})
		if err == nil || !strings.Contains(err.Error(), "invalid object key") {
			t.Errorf("Put(%q) = %v, want invalid key error", key, err)
		}
	}
}

func TestNoTempFilesLeft(t *testing.T) {
	root := t.TempDir()
	b, err := fs.Open(fs.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Put(t.Context(), "a/b", strings.NewReader("x"), 1, storage.PutOptions{})
	_ = b.Put(t.Context(), "a/b", strings.NewReader("x"), 1, storage.PutOptions{IfNotExist: true})
	_ = b.Put(t.Context(), "a/c", strings.NewReader("short"), 100, storage.PutOptions{})
	entries, _ := os.ReadDir(filepath.Join(root, "a"))
	if len(entries) != 1 || entries[0].Name() != "b" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only [b]", names)
	}
}
