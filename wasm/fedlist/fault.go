package fedlist

// faultError is an error of one of the package's kinds (errors.Is(err, kind)
// holds) with a detail. It says what fmt.Errorf("%w: detail", kind) says;
// built from constant text it costs the filter module a fraction of the
// code of a formatted error at each of the many places that report one.
type faultError struct {
	kind   error
	detail string
}

func (e *faultError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *faultError) Unwrap() error { return e.kind }

// fault returns the error kind with detail.
func fault(kind error, detail string) error { return &faultError{kind, detail} }
