package policyserve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/timfd/fachdienst/policies"
)

// maxBundleBytes bounds a bundle file: the policies and their data are a few hundred KB.
const maxBundleBytes = 32 << 20

// source is one reading of the policy sources: the Rego modules (tests included), data.json and the
// bundle manifest's revision, whatever their origin (directory, bundle file, the embedded default).
type source struct {
	fsys     fs.FS
	manifest string // .manifest "revision", "" without one
	origin   string // what was read, for status and logs
}

// readSource reads the configured sources. A directory is read in place (os.DirFS): an OPA bundle
// directory (`.manifest`, *.rego, data.json) as `opa build`/`opa test` read it. A bundle file
// (`opa build -o bundle.tar.gz`) is unpacked into memory.
func (s *Server) readSource() (*source, error) {
	src := &source{fsys: policies.FS, origin: "embedded"}
	switch {
	case s.cfg.Bundle != "":
		fsys, err := readBundleFile(s.cfg.Bundle)
		if err != nil {
			return nil, fmt.Errorf("policy: bundle %s: %w", s.cfg.Bundle, err)
		}
		src.fsys, src.origin = fsys, "bundle "+s.cfg.Bundle
	case s.cfg.Dir != "":
		if st, err := os.Stat(s.cfg.Dir); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("policy: %s is not a directory", s.cfg.Dir)
		}
		src.fsys, src.origin = os.DirFS(s.cfg.Dir), "directory "+s.cfg.Dir
	}
	return sourceOf(src.fsys, src.origin)
}

// sourceOf reads the manifest of fsys.
func sourceOf(fsys fs.FS, origin string) (*source, error) {
	src := &source{fsys: fsys, origin: origin}
	raw, err := fs.ReadFile(src.fsys, ".manifest")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("policy: .manifest: %w", err)
	default:
		var m bundle.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("policy: .manifest: %w", err)
		}
		src.manifest = m.Revision
	}
	return src, nil
}

// readBundleFile unpacks an OPA bundle (tar.gz) into an in-memory file system: its modules at their
// paths, its data as one data.json, its manifest as .manifest.
func readBundleFile(name string) (fs.FS, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBundle(f)
}

func readBundle(r io.Reader) (fs.FS, error) {
	b, err := bundle.NewCustomReader(bundle.NewTarballLoaderWithBaseURL(r, "")).
		WithSizeLimitBytes(maxBundleBytes).
		WithSkipBundleVerification(true).
		WithLazyLoadingMode(false).
		Read()
	if err != nil {
		return nil, err
	}
	out := fstest.MapFS{}
	// `opa build -b DIR` names modules by DIR's path; relative to the bundle root they read as in the
	// directory (the plan's file names, and so the revision, are then the same).
	prefix := ""
	for i, m := range b.Modules {
		d := path.Dir(path.Clean("/" + m.Path)[1:]) + "/"
		switch {
		case i == 0:
			prefix = d
		default:
			for !strings.HasPrefix(d, prefix) {
				prefix = path.Dir(strings.TrimSuffix(prefix, "/")) + "/"
			}
		}
	}
	if prefix == "./" || prefix == "/" {
		prefix = ""
	}
	for _, m := range b.Modules {
		p := strings.TrimPrefix(path.Clean("/" + m.Path)[1:], prefix)
		if !fs.ValidPath(p) {
			return nil, fmt.Errorf("module path %q", m.Path)
		}
		out[p] = &fstest.MapFile{Data: m.Raw, Mode: 0o444}
	}
	data, err := json.Marshal(b.Data)
	if err != nil {
		return nil, err
	}
	out["data.json"] = &fstest.MapFile{Data: data, Mode: 0o444}
	manifest, err := json.Marshal(b.Manifest)
	if err != nil {
		return nil, err
	}
	out[".manifest"] = &fstest.MapFile{Data: manifest, Mode: 0o444}
	return out, nil
}
