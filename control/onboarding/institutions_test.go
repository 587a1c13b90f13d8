package onboarding

import (
	"errors"
	"testing"
)

func TestCheckInstitution(t *testing.T) {
	cases := []struct {
		oid       string
		ok        bool
		insurance bool
	}{
		{"1.2.276.0.76.4.50", true, false},  // Betriebsstätte Arzt
		{"1.2.276.0.76.4.53", true, false},  // Krankenhaus
		{"1.2.276.0.76.4.59", true, true},   // Kostenträger
		{"1.2.276.0.76.4.284", true, true},  // weitere Kostenträger
		{"1.2.276.0.76.4.273", true, false}, // reference name carries "(?)" in the table
		{"1.2.276.0.76.4.30", false, false}, // Arzt (person, Tab_PKI_402)
		{"1.2.276.0.76.4.5", false, false},
		{"", false, false},
		{"1.2.276.0.76.4.50 ", true, false},
	}
	for _, tc := range cases {
		in, err := CheckInstitution(tc.oid)
		if tc.ok != (err == nil) {
			t.Fatalf("%q: %v", tc.oid, err)
		}
		if err != nil && !errors.Is(err, ErrOIDNotAllowed) {
			t.Fatalf("%q: %v is not ErrOIDNotAllowed", tc.oid, err)
		}
		if in.IsInsurance() != tc.insurance {
			t.Fatalf("%q: insurance %v", tc.oid, in.IsInsurance())
		}
	}
	if len(institutions) != 65 {
		t.Fatalf("%d institutions read, the table has 65", len(institutions))
	}
}
