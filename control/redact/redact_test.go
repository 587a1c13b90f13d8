package redact

import "testing"

func TestID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"@alice:example.de", ID("@alice:example.de")},
	} {
		got := ID(tc.in)
		if got != tc.want || (tc.in != "" && (len(got) != 12 || got == tc.in)) {
			t.Fatalf("ID(%q) = %q", tc.in, got)
		}
	}
	if ID("@a:x") == ID("@b:x") {
		t.Fatal("different inputs share a tag")
	}
}
