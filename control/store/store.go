// Package store is the control plane's persistent state: release lists (contacts) and the last good
// federation list.
//
// One schema serves both backends: embedded SQLite (modernc.org/sqlite, pure Go) for a single process,
// and PostgreSQL (pgx stdlib) for replicas that share state. Migrations are goose v3 SQL files
// embedded in the binary and applied on Open. SQL is written with '?' placeholders and rebound to
// '$n' for PostgreSQL, so every statement exists once.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers "sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers branch on.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrLimit    = errors.New("store: limit reached")
)

// Dialect names the database behind a Store.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is safe for concurrent use; for PostgreSQL several processes may share one database.
type Store struct {
	db      *sql.DB
	dialect Dialect
}

// Options selects the backend: PostgreSQL when PostgresDSN is set, SQLite at SQLitePath otherwise.
type Options struct {
	PostgresDSN string
	SQLitePath  string
}

// Open connects, migrates the schema to the newest version and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	var (
		db      *sql.DB
		dialect Dialect
		gd      goose.Dialect
		err     error
	)
	if opts.PostgresDSN != "" {
		dialect, gd = Postgres, goose.DialectPostgres
		db, err = sql.Open("pgx", opts.PostgresDSN)
		if err == nil {
			db.SetMaxOpenConns(20)
			db.SetMaxIdleConns(20)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	} else {
		if opts.SQLitePath == "" {
			return nil, errors.New("store: neither a PostgreSQL DSN nor an SQLite path given")
		}
		dialect, gd = SQLite, goose.DialectSQLite3
		// WAL lets readers run beside the single writer; busy_timeout makes concurrent writers
		// wait instead of failing with SQLITE_BUSY.
		dsn := "file:" + opts.SQLitePath + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
		db, err = sql.Open("sqlite", dsn)
		if err == nil {
			db.SetMaxOpenConns(8)
			db.SetMaxIdleConns(8)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dialect, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect %s: %w", dialect, err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	p, err := goose.NewProvider(gd, db, sub)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrate %s: %w", dialect, err)
	}
	return &Store{db: db, dialect: dialect}, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect reports the backend in use.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping reports whether the database answers; readiness uses it.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// q rebinds '?' placeholders for PostgreSQL.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// inTx runs fn in one transaction, committing when fn returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
