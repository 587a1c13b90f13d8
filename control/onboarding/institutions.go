// Package onboarding authenticates an organisation at the registration service with its SMC-B:
// by OpenID Connect against the central IDP (gemSpec_TI-Messenger-FD 4.2.1.1, 5.1.1.2.1.1) or by
// the KIM procedure (4.2.1.2, 5.1.1.2.1.2). Either way the result is an Identity whose
// ProfessionOID is one of the institutions of Tab_PKI_403 (gemSpec_OID).
package onboarding

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
)

// Identity is an authenticated organisation.
type Identity struct {
	TelematikID   string
	ProfessionOID string
	OrgName       string
	Method        string // "oidc" or "kim"
}

// Tab_PKI_403 as published in gemSpec_OID: the OIDs of institutions in the SMC-B's certificate.
//
//go:embed tab_pki_403_institutions.csv
var tabPKI403 string

// Institution is one row of Tab_PKI_403.
type Institution struct {
	OID, Reference, Description string
}

var institutions = func() map[string]Institution {
	rows, err := csv.NewReader(strings.NewReader(tabPKI403)).ReadAll()
	if err != nil || len(rows) < 2 {
		panic("onboarding: embedded Tab_PKI_403 unreadable")
	}
	m := make(map[string]Institution, len(rows)-1)
	for _, r := range rows[1:] {
		m[r[0]] = Institution{OID: r[0], Reference: strings.TrimSpace(strings.TrimSuffix(r[1], "(?)")), Description: r[2]}
	}
	return m
}()

// ErrOIDNotAllowed: the ProfessionOID is not an institution of Tab_PKI_403 (for example a person's
// OID from Tab_PKI_402, or none at all).
var ErrOIDNotAllowed = errors.New("onboarding: ProfessionOID is not an institution of Tab_PKI_403")

// CheckInstitution returns the Tab_PKI_403 entry for oid, or an error naming the reason.
func CheckInstitution(oid string) (Institution, error) {
	in, ok := institutions[strings.TrimSpace(oid)]
	if !ok {
		if oid == "" {
			return Institution{}, fmt.Errorf("%w: no ProfessionOID given", ErrOIDNotAllowed)
		}
		return Institution{}, fmt.Errorf("%w: %q", ErrOIDNotAllowed, oid)
	}
	return in, nil
}

// IsInsurance reports whether the institution is a cost bearer (Kostenträger); the VZD's
// federation entry carries it as isInsurance.
func (in Institution) IsInsurance() bool {
	return in.Reference == "oid_kostentraeger" || in.Reference == "oid_bs-weitere-kostentraeger"
}
