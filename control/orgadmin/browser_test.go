package orgadmin_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/timfd/fachdienst/control/orgadmin"
)

// chromium finds Debian's chromium; in CI its absence fails the test.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (Debian: apt-get install -y chromium); the portal tests must run in CI")
	}
	t.Skip("chromium is not installed (Debian: apt-get install -y chromium)")
	return ""
}

// screenshotDir is build/screenshots at the module root.
func screenshotDir(t *testing.T) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root not found")
		}
		dir = parent
	}
	out := filepath.Join(dir, "build", "screenshots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// The portal in a real browser, without scripts of its own: onboard with the SMC-B, enrol TOTP,
// sign out and in, order a domain, see it listed (pending, then active), block a user, request a
// token, and the KIM pages. One screenshot per page.
func TestPortalInChromium(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t, withMail, kimPraxis)
	shots := screenshotDir(t)

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 900),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	n := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			n++
			return os.WriteFile(filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name)), buf, 0o644)
		})
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage:\n%s", step, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	h1 := func(want string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			got, err := chromedp.Text(chromedp.CSS("h1"))(ctx, tg)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("page heading %q, want %q", got, want)
			}
			return nil
		})
	}

	// Onboarding with the SMC-B through the IDP stand-in.
	run("start page", chromedp.Navigate(e.url+"/orgadmin/"), h1("Registration"), shot("start"))
	run("onboard", chromedp.Click(chromedp.CSS("#onboard-oidc")), chromedp.WaitVisible(chromedp.CSS("#username")), h1("Create the Org-Admin account"))
	// A weak password first: the rules are shown.
	run("weak password", chromedp.SendKeys(chromedp.CSS("#username"), "praxis-admin"), chromedp.SendKeys(chromedp.CSS("#password"), "kurz"),
		chromedp.SendKeys(chromedp.CSS("#password_confirm"), "kurz"), chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#error")), shot("account-new-weak-password"))
	if !strings.Contains(text("#error"), "at least 12 characters") {
		t.Fatal("password rule not shown")
	}
	run("account", chromedp.SetValue(chromedp.CSS("#password"), goodPassword), chromedp.SetValue(chromedp.CSS("#password_confirm"), goodPassword),
		chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS("#totp-secret")), h1("Set up the second factor"), shot("totp-enrolment"))
	secret := text("#totp-secret")
	code, _ := orgadmin.TOTPCode(secret, e.clock.Now())
	run("confirm totp", chromedp.SendKeys(chromedp.CSS("#totp_code"), code), chromedp.Submit(chromedp.CSS("#totp_code")),
		chromedp.WaitVisible(chromedp.CSS("#domain")), h1("Messenger services"), shot("services-empty"))

	// Sign out and in again with password and TOTP (the next step's code: each code counts once).
	run("sign out", chromedp.Click(chromedp.CSS(`nav button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#totp_code")), h1("Sign in"), shot("login"))
	code, _ = orgadmin.TOTPCode(secret, e.clock.Now().Add(30*time.Second))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#username"), "praxis-admin"), chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
		chromedp.SendKeys(chromedp.CSS("#totp_code"), code), chromedp.Submit(chromedp.CSS("#totp_code")), chromedp.WaitVisible(chromedp.CSS("#domain")), h1("Messenger services"))

	// Order a domain: listed as pending; after the operator's approval as active.
	run("order", chromedp.SendKeys(chromedp.CSS("#domain"), "messenger.praxis-beispiel.de"), chromedp.Submit(chromedp.CSS("#domain")),
		chromedp.WaitVisible(chromedp.CSS("#notice")), shot("services-pending"))
	if got := text("td.status"); got != "pending" {
		t.Fatalf("status after order: %q", got)
	}
	resp, err := http.Post(e.opURL+"/internal/v1/registration/services/messenger.praxis-beispiel.de/approve", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %v %v", resp.StatusCode, err)
	}
	run("listed active", chromedp.Navigate(e.url+"/orgadmin/services"), chromedp.WaitVisible(chromedp.CSS("td.status")), shot("services-active"))
	if got := text("td.status"); got != "active" {
		t.Fatalf("status after approval: %q", got)
	}

	// Block a user.
	run("users", chromedp.Click(chromedp.CSS(`a[href="/orgadmin/users"]`)), chromedp.WaitVisible(chromedp.CSS("#mxid")), h1("Users"),
		chromedp.SendKeys(chromedp.CSS("#mxid"), "@alice:messenger.praxis-beispiel.de"), chromedp.Click(chromedp.CSS("#block")),
		chromedp.WaitVisible(chromedp.CSS("#blocked")), shot("users-blocked"))
	if got := text("#blocked"); !strings.Contains(got, "@alice:messenger.praxis-beispiel.de") {
		t.Fatalf("blocked list: %q", got)
	}
	if calls := e.blocker.Calls(); len(calls) != 1 || calls[0] != "block @alice:messenger.praxis-beispiel.de" {
		t.Fatalf("blocker calls: %v", calls)
	}

	// RegService token.
	run("token", chromedp.Click(chromedp.CSS(`a[href="/orgadmin/token"]`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/orgadmin/token"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/orgadmin/token"] button`)), chromedp.WaitVisible(chromedp.CSS("#token-out")), shot("token"))

	// KIM pages, in a fresh browser state (signed out).
	run("sign out 2", chromedp.Click(chromedp.CSS(`nav button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#totp_code")))
	e.dir.Put("klinik@beispiel.kim.telematik", kimEntry(klinik))
	run("kim start", chromedp.Navigate(e.url+"/orgadmin/onboarding/kim"), chromedp.WaitVisible(chromedp.CSS("#kim_address")), shot("kim-start"),
		chromedp.SendKeys(chromedp.CSS("#kim_address"), "klinik@beispiel.kim.telematik"), chromedp.Submit(chromedp.CSS("#kim_address")),
		chromedp.WaitVisible(chromedp.CSS("#kim-code")), shot("kim-code"))
	kimCode := text("#kim-code")
	msgs, err := e.mail.Messages(context.Background(), "klinik@beispiel.kim.telematik")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("mail: %v %v", msgs, err)
	}
	link := kimLinkRe.FindString(msgs[0].Text)
	run("kim link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#code")), shot("kim-verify"),
		chromedp.SendKeys(chromedp.CSS("#code"), kimCode), chromedp.Submit(chromedp.CSS("#code")),
		chromedp.WaitVisible(chromedp.CSS("#username")), h1("Create the Org-Admin account"))
	run("kim link reused", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#error")), shot("error-link-used"))
	if got := text("#error"); !strings.Contains(got, "used already") {
		t.Fatalf("reused link: %q", got)
	}
	t.Logf("%d screenshots in %s", n, shots)
}
