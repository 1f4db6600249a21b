package e2e

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/credentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// postgresEnv names an admin DSN of a PostgreSQL server on which tests may
// create databases (the same variable the store tests use).
const postgresEnv = "KUMO_TEST_POSTGRES_DSN"

// TestPostgres runs kumo on PostgreSQL: a short identity flow, then a
// restart on the same database with a fresh data directory.
func TestPostgres(t *testing.T) {
	t.Parallel()
	admin := os.Getenv(postgresEnv)
	if admin == "" {
		requireOrSkip(t, "%s is not set: no PostgreSQL to run kumo on", postgresEnv)
	}
	dsn := throwawayDatabase(t, admin)
	k := Start(t, Options{Args: []string{"--db-dsn", dsn}})
	if !strings.Contains(k.log(), `database="postgres:`) {
		t.Fatalf("kumo does not report serving from PostgreSQL")
	}
	ctx := testContext(t)
	ac := k.adminIdentity(t, ctx)

	proj, err := projects.Create(ctx, ac, projects.CreateOpts{Name: "pg-project", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	u, err := users.Create(ctx, ac, users.CreateOpts{Name: "pg-user", DomainID: "default", Password: "pg-pw"}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	if err := roles.Assign(ctx, ac, roleID(t, ctx, ac, "member"), roles.AssignOpts{UserID: u.ID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatalf("grant: %v", err)
	}
	up, err := k.Authenticate(ctx, gophercloud.AuthOptions{UserID: u.ID, Password: "pg-pw", Scope: &gophercloud.AuthScope{ProjectID: proj.ID}})
	if err != nil {
		t.Fatalf("authenticate as the user: %v", err)
	}
	checkTokenScope(t, "user token", authToken(t, up), u.ID, proj.ID, "member", "reader")
	if err := tokens.Revoke(ctx, ac, up.Token()).Err; err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err = tokens.Get(ctx, ac, up.Token()).ExtractToken()
	checkKeystoneError(t, "validate a revoked token", err, 404, "")
	// A credential: its blob is encrypted with the key file in k's data
	// directory, which a second process needs a copy of.
	cred, err := credentials.Create(ctx, ac, credentials.CreateOpts{Type: "totp", UserID: u.ID, Blob: "PG-SEED"}).Extract()
	if err != nil {
		t.Fatalf("create credential: %v", err)
	}
	adminToken := ac.Token()
	k.Stop()
	if t.Failed() {
		t.FailNow()
	}

	// The database is the whole state but for the credential key file: a
	// new process with a data directory holding only a copy of that file
	// sees the same cloud, the same token keys and the same credentials.
	dir2 := t.TempDir()
	keys, err := os.ReadFile(filepath.Join(k.DataDir, "credential-keys"))
	if err != nil {
		t.Fatalf("credential key file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "credential-keys"), keys, 0o600); err != nil {
		t.Fatal(err)
	}
	k2 := Start(t, Options{Args: []string{"--db-dsn", dsn}, Password: k.Password, DataDir: dir2})
	got, err := projects.Get(ctx, k2.tokenClient(t, adminToken), proj.ID).Extract()
	if err != nil {
		t.Fatalf("get project from the second process with the first one's token: %v", err)
	}
	if got.Name != "pg-project" {
		t.Errorf("project = %+v", got)
	}
	_, err = tokens.Get(ctx, k2.tokenClient(t, adminToken), up.Token()).ExtractToken()
	checkKeystoneError(t, "revoked token after restart", err, 404, "")
	if got, err := credentials.Get(ctx, k2.tokenClient(t, adminToken), cred.ID).Extract(); err != nil || got.Blob != "PG-SEED" {
		t.Errorf("credential from the second process: %+v, %v", got, err)
	}
	var raw string
	pg, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if err := pg.QueryRowContext(ctx, `SELECT blob FROM credentials WHERE id = $1`, cred.ID).Scan(&raw); err != nil || strings.Contains(raw, "PG-SEED") {
		t.Errorf("credential blob in the database: %q, %v", raw, err)
	}
}

// throwawayDatabase creates a database on the server of adminDSN, drops it
// when the test ends (after the kumo processes using it have stopped:
// cleanups run last-in first-out) and returns its DSN.
func throwawayDatabase(t *testing.T, adminDSN string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		t.Fatalf("open %s: %v", postgresEnv, err)
	}
	defer db.Close()
	name := randomString("kumo_e2e_", 12)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", adminDSN)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatalf("parse %s: %v", postgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}
