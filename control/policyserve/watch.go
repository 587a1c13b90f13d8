package policyserve

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long the watcher waits after the last change before it reloads: an editor's save
// (write, rename, chmod) or a `git checkout` touches several files in a burst.
const settle = 300 * time.Millisecond

// Watch reloads (with reload, e.g. a server-wide reload; nil: s.Reload) whenever a file of the
// configured sources changes: every directory of Dir, or the directory of Bundle (editors and
// deployments replace a file by renaming over it). It returns when ctx ends, or at once with an
// error when the watch cannot be set up. With the embedded policies there is nothing to watch.
func (s *Server) Watch(ctx context.Context, reload func(context.Context) error) error {
	if reload == nil {
		reload = func(ctx context.Context) error { _, err := s.Reload(ctx); return err }
	}
	var dirs []string
	switch {
	case s.cfg.Bundle != "":
		dirs = []string{filepath.Dir(s.cfg.Bundle)}
	case s.cfg.Dir != "":
		err := filepath.WalkDir(s.cfg.Dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return err
		})
		if err != nil {
			return err
		}
	default:
		return nil
	}
	if s.cfg.DataFile != "" {
		dirs = append(dirs, filepath.Dir(s.cfg.DataFile))
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return err
		}
	}
	s.log.Info("watching the policy sources", "event", "policy_watch", "dirs", len(dirs))
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					// A directory made under Dir is watched too.
					if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && s.cfg.Bundle == "" {
						_ = w.Add(ev.Name)
					}
				}
				timer = time.After(settle)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("policy watch", "error", err.Error())
			case <-timer:
				timer = nil
				_ = reload(ctx) // the outcome is logged and shown in the status
			}
		}
	}()
	return nil
}
