// Package storetest opens fresh stores for tests: SQLite always, PostgreSQL when
// TIM_TEST_POSTGRES_DSN is set. In CI (CI=true) a missing DSN fails the test instead of skipping
// PostgreSQL, so the PostgreSQL path can never silently stop being tested.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/control/store"
)

// DSNEnv names the variable holding the PostgreSQL test DSN.
const DSNEnv = "TIM_TEST_POSTGRES_DSN"

// Each runs fn as a subtest once per available backend, each with an empty, migrated store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: in CI the storage tests must run against PostgreSQL (use scripts/with-postgres.sh)", DSNEnv)
		}
		t.Logf("%s not set: PostgreSQL backend not tested here", DSNEnv)
		return
	}
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, dsn)) })
}

// SQLite opens a store on a file in the test's temporary directory.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{SQLitePath: filepath.Join(t.TempDir(), "tim.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Postgres opens a store in a schema of its own inside the database at dsn, dropped afterwards.
func Postgres(t testing.TB, dsn string) *store.Store {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("postgres at %s: %v", DSNEnv, err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", dsn); err == nil {
			db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			db.Close()
		}
	})
	s, err := store.Open(ctx, store.Options{PostgresDSN: withSearchPath(t, dsn, schema)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}
