package orgcheck

import (
	"fmt"
	"strings"
	"time"
)

// Mails to the Org-Admin: German, as the organisations are; they name the organisation's domains but
// nothing else.
const (
	subjectInactive       = "TI-Messenger: Ihre Organisation ist im Verzeichnisdienst nicht mehr aktiv"
	subjectSuspended      = "TI-Messenger: Ihre Messenger-Services wurden aus der Föderation entfernt"
	subjectDecommissioned = "TI-Messenger: Ihre Messenger-Services wurden außer Betrieb genommen"
)

func (c *Checker) inactiveText(org Organisation, since time.Time) string {
	deadline := since.Add(c.o.GracePeriod)
	return fmt.Sprintf(`Guten Tag,

Ihre Organisation (Telematik-ID %s) ist seit %s im Verzeichnisdienst der TI (VZD-FHIR-Directory) nicht mehr
als aktiv eingetragen.

Bleibt sie länger als %d Tage inaktiv, also über den %s hinaus, werden die Domains Ihrer Messenger-Services
aus der TI-Messenger-Föderation entfernt:

%s
Danach ist eine Nutzung erst nach erneuter Authentisierung mit der SMC-B Ihrer Organisation wieder möglich.
Bitte prüfen Sie den Eintrag Ihrer Organisation bzw. die Gültigkeit Ihrer SMC-B.

%s
`, org.TelematikID, since.UTC().Format("02.01.2006"), int(c.o.GracePeriod/(24*time.Hour)),
		deadline.UTC().Format("02.01.2006"), domainLines(org.Domains), c.o.Provider)
}

func (c *Checker) suspendedText(org Organisation) string {
	return fmt.Sprintf(`Guten Tag,

Ihre Organisation (Telematik-ID %s) ist seit mehr als %d Tagen im Verzeichnisdienst der TI nicht mehr aktiv.
Die Domains Ihrer Messenger-Services wurden daher aus der TI-Messenger-Föderation entfernt:

%s
Eine weitere Nutzung ist erst nach erneuter Authentisierung mit der SMC-B Ihrer Organisation möglich.

%s
`, org.TelematikID, int(c.o.GracePeriod/(24*time.Hour)), domainLines(org.Domains), c.o.Provider)
}

func (c *Checker) decommissionedText(org Organisation) string {
	return fmt.Sprintf(`Guten Tag,

die Messenger-Services Ihrer Organisation (Telematik-ID %s) wurden außer Betrieb genommen; ihre Domains
wurden aus der TI-Messenger-Föderation entfernt:

%s
%s
`, org.TelematikID, domainLines(org.Domains), c.o.Provider)
}

func domainLines(ds []string) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  - " + d + "\n")
	}
	return b.String()
}
