package delivery

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// maxSpoolLine bounds one spooled job (a notice, a pushkey and pusher data).
const maxSpoolLine = 1 << 20

// WriteSpool writes jobs as JSON lines, atomically (temporary file, fsync,
// rename) and readable by the owner only: the file holds pushkeys and event
// ids, never message content.
func WriteSpool(path string, jobs []Job) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".spool-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	for i := range jobs {
		if err := enc.Encode(&jobs[i]); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadSpool reads a spool file; a missing file is an empty spool.
func ReadSpool(path string) ([]Job, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var jobs []Job
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxSpoolLine)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var j Job
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			return nil, fmt.Errorf("spool %s line %d: %w", path, line, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, sc.Err()
}

// Reload restores the spool into d and removes the file once its jobs are
// queued again; they are spooled anew if the process is stopped before
// delivering them.
func Reload(d *Dispatcher, path string) (int, error) {
	jobs, err := ReadSpool(path)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	if err := d.Restore(jobs); err != nil {
		return 0, err
	}
	return len(jobs), os.Remove(path)
}
