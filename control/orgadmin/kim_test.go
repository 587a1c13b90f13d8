package orgadmin_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/mailer"
	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/standin/idp"
)

var (
	kimCodeRe = regexp.MustCompile(`<p class="code" id="kim-code"[^>]*>(\d{6})</p>`)
	kimLinkRe = regexp.MustCompile(`http://[^\s]+/orgadmin/onboarding/kim/([0-9a-f-]{36})`)
)

func kimPraxis(e *env) {
	e.dir.Put("praxis@beispiel.kim.telematik", onboarding.DirectoryEntry{TelematikID: praxis.IDNummer, ProfessionOID: praxis.ProfessionOID, OrgName: praxis.OrganizationName})
	e.dir.Put("arzt@beispiel.kim.telematik", onboarding.DirectoryEntry{TelematikID: "1-HBA-77", ProfessionOID: "1.2.276.0.76.4.30", OrgName: "Dr. Person"})
}

// orderKIM starts the procedure in b and returns the code shown and the link from the mail.
func orderKIM(t *testing.T, e *env, b *browser, addr string) (code, link string) {
	t.Helper()
	want(t, b.get("/orgadmin/onboarding/kim"), http.StatusOK, "KIM address")
	p := b.post("/orgadmin/onboarding/kim", url.Values{"kim_address": {addr}})
	want(t, p, http.StatusOK, "An authentication mail has been sent")
	code = kimCodeRe.FindStringSubmatch(p.body)[1]
	msgs, err := e.mail.Messages(context.Background(), addr)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("no mail to %s: %v", addr, err)
	}
	m := msgs[0] // newest
	if got := m.Headers["X-Kim-Serviceindicator"]; len(got) != 1 || got[0] != "Auth;Verification;V1.0" {
		t.Fatalf("X-KIM-serviceindicator = %v (headers %v)", got, m.Headers)
	}
	if !strings.Contains(m.Raw, "\r\nX-KIM-serviceindicator: Auth;Verification;V1.0\r\n") {
		t.Fatalf("header not spelt as specified in the raw mail:\n%s", m.Raw)
	}
	if !strings.Contains(m.Text, "This is an authentication mail") || strings.Contains(m.Text, code) {
		t.Fatalf("mail text must say it is an authentication mail and must not hold the code:\n%s", m.Text)
	}
	lm := kimLinkRe.FindStringSubmatch(m.Text)
	if lm == nil || !strings.HasPrefix(lm[0], e.url+"/orgadmin/onboarding/kim/") {
		t.Fatalf("no link on the registration service in the mail:\n%s", m.Text)
	}
	return code, strings.TrimPrefix(lm[0], e.url)
}

func TestKIMOnboarding(t *testing.T) {
	e := newEnv(t, withMail, kimPraxis)
	b := e.browser()
	code, link := orderKIM(t, e, b, "praxis@beispiel.kim.telematik")

	// The link leads back to the order; a wrong code is refused and counted.
	want(t, b.get(link), http.StatusOK, "Six-digit code")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	want(t, b.post(link, url.Values{"code": {wrong}}), http.StatusUnprocessableEntity, "does not match")
	tok := b.csrf()
	want(t, b.post(link, url.Values{"code": {code}}), http.StatusOK, "Create the Org-Admin account", praxis.OrganizationName)
	// Single use.
	want(t, b.get(link), http.StatusGone, "used already")
	want(t, b.post(link, url.Values{"code": {code}, "csrf_token": {tok}}), http.StatusGone, "used already")

	b.createAccount("kim-admin")
	a, err := e.st.OrgAdminByTelematikID(context.Background(), praxis.IDNummer)
	if err != nil || a.AuthMethod != "kim" || a.ProfessionOID != praxis.ProfessionOID {
		t.Fatalf("admin = %+v, %v", a, err)
	}
	// Exactly one Org-Admin: the KIM procedure cannot create a second one.
	b2 := e.browser()
	code2, link2 := orderKIM(t, e, b2, "praxis@beispiel.kim.telematik")
	want(t, b2.get(link2), http.StatusOK)
	want(t, b2.post(link2, url.Values{"code": {code2}}), http.StatusConflict, "already exists for this organisation")
}

func TestKIMRefusals(t *testing.T) {
	e := newEnv(t, withMail, kimPraxis)
	t.Run("expired link", func(t *testing.T) {
		b := e.browser()
		code, link := orderKIM(t, e, b, "praxis@beispiel.kim.telematik")
		want(t, b.get(link), http.StatusOK)
		tok := b.csrf()
		e.clock.Advance(31 * time.Minute)
		want(t, b.get(link), http.StatusGone, "expired")
		want(t, b.post(link, url.Values{"code": {code}, "csrf_token": {tok}}), http.StatusGone, "expired")
	})
	t.Run("attempts limited", func(t *testing.T) {
		b := e.browser()
		code, link := orderKIM(t, e, b, "praxis@beispiel.kim.telematik")
		want(t, b.get(link), http.StatusOK)
		wrong := "123456"
		if code == wrong {
			wrong = "654321"
		}
		for range 5 {
			want(t, b.post(link, url.Values{"code": {wrong}}), http.StatusUnprocessableEntity)
		}
		// The right code no longer helps.
		want(t, b.post(link, url.Values{"code": {code}}), http.StatusTooManyRequests, "Too many wrong codes")
	})
	t.Run("mails per organisation bounded", func(t *testing.T) {
		e.dir.Put("viel@beispiel.kim.telematik", kimEntry(klinik))
		b := e.browser()
		for range 3 {
			orderKIM(t, e, b, "viel@beispiel.kim.telematik")
		}
		want(t, b.get("/orgadmin/onboarding/kim"), http.StatusOK)
		want(t, b.post("/orgadmin/onboarding/kim", url.Values{"kim_address": {"viel@beispiel.kim.telematik"}}), http.StatusTooManyRequests, "Too many authentication mails")
		if msgs, _ := e.mail.Messages(context.Background(), "viel@beispiel.kim.telematik"); len(msgs) != 3 {
			t.Fatalf("%d mails sent, want 3", len(msgs))
		}
	})
	t.Run("unknown link", func(t *testing.T) {
		b := e.browser()
		want(t, b.get("/orgadmin/onboarding/kim/0b0b0b0b-0000-4000-8000-000000000000"), http.StatusNotFound, "not known")
		want(t, b.get("/orgadmin/onboarding/kim/not-a-uuid"), http.StatusNotFound, "not known")
	})
	t.Run("person OID", func(t *testing.T) {
		b := e.browser()
		want(t, b.get("/orgadmin/onboarding/kim"), http.StatusOK)
		want(t, b.post("/orgadmin/onboarding/kim", url.Values{"kim_address": {"arzt@beispiel.kim.telematik"}}), http.StatusForbidden, "Tab_PKI_403")
		if msgs, _ := e.mail.Messages(context.Background(), "arzt@beispiel.kim.telematik"); len(msgs) != 0 {
			t.Fatal("a refused organisation must get no mail")
		}
	})
	t.Run("not in directory", func(t *testing.T) {
		b := e.browser()
		want(t, b.get("/orgadmin/onboarding/kim"), http.StatusOK)
		want(t, b.post("/orgadmin/onboarding/kim", url.Values{"kim_address": {"wer@unbekannt.kim.telematik"}}), http.StatusNotFound, "not listed in the directory")
		want(t, b.post("/orgadmin/onboarding/kim", url.Values{"kim_address": {"no address\r\nBcc: x@y.de"}}), http.StatusBadRequest, "valid KIM address")
	})
	if _, err := e.st.OrgAdminByTelematikID(context.Background(), praxis.IDNummer); err != store.ErrNotFound {
		t.Fatalf("refusals created an admin: %v", err)
	}
}

func kimEntry(id idp.Identity) onboarding.DirectoryEntry {
	return onboarding.DirectoryEntry{TelematikID: id.IDNummer, ProfessionOID: id.ProfessionOID, OrgName: id.OrganizationName}
}

// A relay that is down: the user is told, and the failed mail does not count as open.
func TestKIMMailFailure(t *testing.T) {
	l, _ := listen(t)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there any more
	e := newEnv(t, kimPraxis, func(e *env) {
		e.mailTo = &mailer.Config{Host: "127.0.0.1", Port: port, From: "registrierung@fd.example.de", TLS: "none", Timeout: 2 * time.Second}
	})
	b := e.browser()
	for range onboarding.MaxOpenMails + 1 {
		want(t, b.get("/orgadmin/onboarding/kim"), http.StatusOK)
		want(t, b.post("/orgadmin/onboarding/kim", url.Values{"kim_address": {"praxis@beispiel.kim.telematik"}}), http.StatusBadGateway, "could not be sent")
	}
	if n, _ := e.st.OpenKIMChallenges(context.Background(), praxis.IDNummer, e.clock.Now()); n != 0 {
		t.Fatalf("%d undelivered challenges count as open", n)
	}
}
