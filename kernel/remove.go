package kernel

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// removeDepth is how far below the root removeTree cuts a tree into
// subtrees: in a work directory, work/linux/drivers/net is one of about
// 500 subtrees of a kernel source tree.
const removeDepth = 3

// removeTree removes dir and everything below it, as os.RemoveAll does,
// with workers goroutines that each remove whole subtrees at a time.
// Unlinking a kernel tree's 90,000 files is system time that one core
// would spend alone while the others idle. It returns the first error.
func removeTree(dir string, workers int) error {
	var units []string
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		ents, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue // removed with its directory at the end
			}
			p := filepath.Join(d, e.Name())
			if depth+1 == removeDepth {
				units = append(units, p)
				continue
			}
			if err := walk(p, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := walk(dir, 0); err != nil {
		// A directory that cannot be listed: os.RemoveAll removes what
		// it can and says what it could not.
		return os.RemoveAll(dir)
	}
	if workers < 1 {
		workers = 1
	}
	jobs := make(chan string)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				if err := os.RemoveAll(p); err != nil && errs[i] == nil {
					errs[i] = err
				}
			}
		}()
	}
	for _, u := range units {
		jobs <- u
	}
	close(jobs)
	wg.Wait()
	// What a worker could not remove, os.RemoveAll tries again, with the
	// files and directories above the subtrees: an error leaves no more
	// behind than os.RemoveAll alone would, and is reported only when the
	// tree is still there.
	if err := os.RemoveAll(dir); err != nil {
		return errors.Join(append(errs, err)...)
	}
	return nil
}
