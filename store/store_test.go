package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/credentials"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql and pgxpool keep background goroutines for pools that
		// tests close in Cleanup after goleak's check would run otherwise.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)
}

type fixture struct {
	s       *store.Store
	project store.Project
}

// setup opens and migrates a fresh database of the dialect and creates one
// project in it.
func setup(t *testing.T, dialect string) fixture {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{DatabaseURL: testdb.New(t, dialect)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	p := store.Project{ID: ids.NewUUID(), Name: "p-" + ids.RandomAlnum(6), CreatedAt: store.Now()}
	require.NoError(t, s.CreateProject(ctx, p))
	return fixture{s: s, project: p}
}

func newEndpoint(projectID, url string) (store.Endpoint, store.SigningKey) {
	now := store.Now()
	e := store.Endpoint{ID: ids.NewEndpoint(), ProjectID: projectID, URL: url, URLNormalized: url, HMACEnabled: true, Headers: store.Headers{"X-A": "b"}, CreatedAt: now, UpdatedAt: now}
	return e, newKey(projectID, e.ID)
}

// endpoint creates an endpoint of the fixture's project, with its key.
func (f fixture) endpoint(t *testing.T, url string) (store.Endpoint, store.SigningKey) {
	t.Helper()
	e, k := newEndpoint(f.project.ID, url)
	require.NoError(t, f.s.CreateEndpoint(context.Background(), e, k))
	return e, k
}

func newKey(projectID, endpointID string) store.SigningKey {
	return store.SigningKey{ID: ids.NewSigningKey(), ProjectID: projectID, EndpointID: endpointID, MasterKeyID: "k", SecretSealed: []byte("sealed"), KeyHint: "abcd", CreatedAt: store.Now()}
}

func forEachDialect(t *testing.T, fn func(t *testing.T, f fixture)) {
	t.Helper()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, setup(t, d))
		})
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		applied, err := f.s.Migrate(context.Background())
		require.NoError(t, err)
		require.Empty(t, applied, "a second run applies nothing")
		all, err := f.s.Migrations()
		require.NoError(t, err)
		require.NotEmpty(t, all)
		var n int
		require.NoError(t, f.s.DB().QueryRow("SELECT count(*) FROM hookd_schema_migrations").Scan(&n))
		require.Equal(t, len(all), n)
	})
}

func TestConcurrentMigrateOnPostgres(t *testing.T) {
	t.Parallel()
	url := testdb.NewPostgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := store.Open(context.Background(), store.Options{DatabaseURL: url})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			_, errs[i] = s.Migrate(context.Background())
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestEndpointLifecycle(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		pid := f.project.ID
		e, k := newEndpoint(pid, "https://a.example.com/")
		require.NoError(t, f.s.CreateEndpoint(ctx, e, k))

		got, err := f.s.GetEndpoint(ctx, pid, e.ID)
		require.NoError(t, err)
		require.Equal(t, e.URL, got.URL)
		require.Equal(t, store.Headers{"X-A": "b"}, got.Headers)
		require.Equal(t, e.CreatedAt, got.CreatedAt)
		require.True(t, got.HMACEnabled)

		dup, dupKey := newEndpoint(pid, "https://a.example.com/")
		require.ErrorIs(t, f.s.CreateEndpoint(ctx, dup, dupKey), store.ErrDuplicateURL)
		_, err = f.s.GetEndpoint(ctx, pid, dup.ID)
		require.ErrorIs(t, err, store.ErrNotFound, "the failed create left no endpoint")

		desc, off := "new", false
		require.NoError(t, f.s.UpdateEndpoint(ctx, pid, e.ID, store.EndpointUpdate{Description: &desc, HMACEnabled: &off}))
		got, err = f.s.GetEndpoint(ctx, pid, e.ID)
		require.NoError(t, err)
		require.Equal(t, "new", got.Description)
		require.False(t, got.HMACEnabled)
		require.Equal(t, e.URL, got.URL, "fields not given keep their values")

		_, err = f.s.SetEndpointPaused(ctx, pid, e.ID, true)
		require.NoError(t, err)
		got, _ = f.s.GetEndpoint(ctx, pid, e.ID)
		require.True(t, got.Paused)

		require.NoError(t, f.s.DeleteEndpoint(ctx, pid, e.ID))
		_, err = f.s.GetEndpoint(ctx, pid, e.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, f.s.DeleteEndpoint(ctx, pid, e.ID), store.ErrNotFound)

		again, againKey := newEndpoint(pid, "https://a.example.com/")
		require.NoError(t, f.s.CreateEndpoint(ctx, again, againKey), "a deleted endpoint's URL is free again")
	})
}

func TestListEndpointsPages(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		var created []string
		for i := range 7 {
			e, k := newEndpoint(f.project.ID, "https://x.example.com/"+string(rune('a'+i)))
			require.NoError(t, f.s.CreateEndpoint(ctx, e, k))
			created = append([]string{e.ID}, created...) // newest first
		}
		var seen []string
		before := ""
		for {
			page, err := f.s.ListEndpoints(ctx, f.project.ID, "", before, 3)
			require.NoError(t, err)
			for _, e := range page {
				seen = append(seen, e.ID)
			}
			if len(page) < 3 {
				break
			}
			before = page[len(page)-1].ID
		}
		require.Equal(t, created, seen)
	})
}

func TestSigningKeyRules(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		pid := f.project.ID
		e, k1 := newEndpoint(pid, "https://k.example.com/")
		require.NoError(t, f.s.CreateEndpoint(ctx, e, k1))

		require.ErrorIs(t, f.s.DeleteSigningKey(ctx, pid, e.ID, k1.ID), store.ErrLastSigningKey)
		k2 := newKey(pid, e.ID)
		require.NoError(t, f.s.CreateSigningKey(ctx, k2))
		require.ErrorIs(t, f.s.CreateSigningKey(ctx, newKey(pid, e.ID)), store.ErrMaxSigningKeys)

		ks, err := f.s.ListSigningKeys(ctx, pid, e.ID)
		require.NoError(t, err)
		require.Equal(t, []string{k2.ID, k1.ID}, []string{ks[0].ID, ks[1].ID}, "newest first")

		require.ErrorIs(t, f.s.DeleteSigningKey(ctx, pid, e.ID, ids.NewSigningKey()), store.ErrNotFound)
		require.NoError(t, f.s.DeleteSigningKey(ctx, pid, e.ID, k1.ID))
		require.ErrorIs(t, f.s.DeleteSigningKey(ctx, pid, e.ID, k2.ID), store.ErrLastSigningKey)
	})
}

func TestConcurrentSigningKeyChanges(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		pid := f.project.ID
		e, k1 := newEndpoint(pid, "https://c.example.com/")
		require.NoError(t, f.s.CreateEndpoint(ctx, e, k1))

		start := make(chan struct{})
		results := make([]error, 20)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				<-start
				results[i] = f.s.CreateSigningKey(ctx, newKey(pid, e.ID))
			})
		}
		close(start)
		wg.Wait()
		ok, full := 0, 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrMaxSigningKeys):
				full++
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		require.Equal(t, 1, ok)
		require.Equal(t, 19, full)

		ks, err := f.s.ListSigningKeys(ctx, pid, e.ID)
		require.NoError(t, err)
		require.Len(t, ks, 2)
		start = make(chan struct{})
		var errs [2]error
		for i := range errs {
			wg.Go(func() {
				<-start
				errs[i] = f.s.DeleteSigningKey(ctx, pid, e.ID, ks[i].ID)
			})
		}
		close(start)
		wg.Wait()
		require.ElementsMatch(t, []error{nil, store.ErrLastSigningKey}, errs[:])
		left, err := f.s.ListSigningKeys(ctx, pid, e.ID)
		require.NoError(t, err)
		require.Len(t, left, 1)
	})
}

func TestProjectsAreIsolated(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		other := store.Project{ID: ids.NewUUID(), Name: "other", CreatedAt: store.Now()}
		require.NoError(t, f.s.CreateProject(ctx, other))
		e, k := f.endpoint(t, "https://iso.example.com/")

		_, err := f.s.GetEndpoint(ctx, other.ID, e.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, f.s.DeleteEndpoint(ctx, other.ID, e.ID), store.ErrNotFound)
		require.ErrorIs(t, f.s.CreateSigningKey(ctx, newKey(other.ID, e.ID)), store.ErrNotFound)
		require.ErrorIs(t, f.s.DeleteSigningKey(ctx, other.ID, e.ID, k.ID), store.ErrNotFound)
		_, err = f.s.ListSigningKeys(ctx, other.ID, e.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		list, err := f.s.ListEndpoints(ctx, other.ID, "", "", 10)
		require.NoError(t, err)
		require.Empty(t, list)

		e2, k2 := newEndpoint(other.ID, "https://iso.example.com/")
		require.NoError(t, f.s.CreateEndpoint(ctx, e2, k2), "URLs are unique per project only")
	})
}

func TestAPIKeysAuthenticateAndDelete(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		secret := credentials.NewAPIKey(credentials.ModeTest)
		k := store.APIKey{ID: ids.NewAPIKey(), ProjectID: f.project.ID, Mode: "test", Prefix: credentials.DisplayPrefix(secret), KeyHash: credentials.HashAPIKey(secret), CreatedAt: store.Now()}
		require.NoError(t, f.s.CreateAPIKey(ctx, k))

		got, _, err := f.s.Authenticate(ctx, credentials.HashAPIKey(secret))
		require.NoError(t, err)
		require.Equal(t, f.project.ID, got.ProjectID)
		require.NotNil(t, got.LastUsedAt)
		first := *got.LastUsedAt

		got, _, err = f.s.Authenticate(ctx, credentials.HashAPIKey(secret))
		require.NoError(t, err)
		require.Equal(t, first, *got.LastUsedAt, "last_used_at is written at most once a minute")

		_, _, err = f.s.Authenticate(ctx, credentials.HashAPIKey(secret+"x"))
		require.ErrorIs(t, err, store.ErrNotFound)

		require.ErrorIs(t, f.s.DeleteAPIKey(ctx, ids.NewUUID(), k.ID), store.ErrNotFound, "another project cannot delete it")
		require.NoError(t, f.s.DeleteAPIKey(ctx, f.project.ID, k.ID))
		_, _, err = f.s.Authenticate(ctx, credentials.HashAPIKey(secret))
		require.ErrorIs(t, err, store.ErrNotFound)
		list, err := f.s.ListAPIKeys(ctx, f.project.ID)
		require.NoError(t, err)
		require.Empty(t, list)
	})
}

// TestProjectSettings: new projects have every setting at 0 (the
// defaults); an update changes only the fields given, refuses values out of
// range without changing anything, and Authenticate returns the current
// rate limits with the key.
func TestProjectSettings(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		secret := credentials.NewAPIKey(credentials.ModeLive)
		k := store.APIKey{ID: ids.NewAPIKey(), ProjectID: f.project.ID, Mode: "live", Prefix: credentials.DisplayPrefix(secret), KeyHash: credentials.HashAPIKey(secret), CreatedAt: store.Now()}
		require.NoError(t, f.s.CreateAPIKey(ctx, k))

		_, lim, err := f.s.Authenticate(ctx, k.KeyHash)
		require.NoError(t, err)
		require.Equal(t, store.ProjectLimits{}, lim)
		p, err := f.s.ProjectByName(ctx, f.project.Name)
		require.NoError(t, err)
		require.Zero(t, p.RateLimitPerMinute)
		require.Zero(t, p.SendRateLimitPerMinute)
		require.Zero(t, p.RetentionHours)

		n := func(v int) *int { return &v }
		p, err = f.s.UpdateProjectSettings(ctx, f.project.Name, store.ProjectSettings{RateLimitPerMinute: n(500), RetentionHours: n(48)})
		require.NoError(t, err)
		require.Equal(t, 500, p.RateLimitPerMinute)
		require.Zero(t, p.SendRateLimitPerMinute)
		require.Equal(t, 48, p.RetentionHours)

		p, err = f.s.UpdateProjectSettings(ctx, f.project.Name, store.ProjectSettings{SendRateLimitPerMinute: n(store.MaxRateLimitPerMinute)})
		require.NoError(t, err)
		require.Equal(t, 500, p.RateLimitPerMinute, "fields not given keep their values")
		require.Equal(t, store.MaxRateLimitPerMinute, p.SendRateLimitPerMinute)
		require.Equal(t, 48, p.RetentionHours)

		_, lim, err = f.s.Authenticate(ctx, k.KeyHash)
		require.NoError(t, err)
		require.Equal(t, store.ProjectLimits{RateLimitPerMinute: 500, SendRateLimitPerMinute: store.MaxRateLimitPerMinute}, lim)

		for name, u := range map[string]store.ProjectSettings{
			"NegativeRate":  {RateLimitPerMinute: n(-1)},
			"HugeSendRate":  {SendRateLimitPerMinute: n(store.MaxRateLimitPerMinute + 1)},
			"LongRetention": {RetentionHours: n(store.MaxRetentionHours + 1), RateLimitPerMinute: n(7)},
		} {
			_, err := f.s.UpdateProjectSettings(ctx, f.project.Name, u)
			require.Error(t, err, name)
			require.NotErrorIs(t, err, store.ErrNotFound, name)
		}
		p, err = f.s.ProjectByName(ctx, f.project.Name)
		require.NoError(t, err)
		require.Equal(t, 500, p.RateLimitPerMinute, "a refused update changed nothing")

		_, err = f.s.UpdateProjectSettings(ctx, "no-such-project", store.ProjectSettings{RetentionHours: n(1)})
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = f.s.UpdateProjectSettings(ctx, "no-such-project", store.ProjectSettings{})
		require.ErrorIs(t, err, store.ErrNotFound)

		// The database refuses out-of-range values written around the store.
		_, err = f.s.DB().Exec("UPDATE projects SET retention_hours = 5000 WHERE id = '" + f.project.ID + "'")
		require.Error(t, err)
	})
}

func TestBootstrapRunsOnce(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := store.Open(ctx, store.Options{DatabaseURL: testdb.New(t, d)})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Migrate(ctx)
			require.NoError(t, err)

			var wg sync.WaitGroup
			created := make([]bool, 5)
			errs := make([]error, 5)
			for i := range created {
				wg.Go(func() {
					p := store.Project{ID: ids.NewUUID(), Name: "default", CreatedAt: store.Now()}
					k := store.APIKey{ID: ids.NewAPIKey(), Mode: "live", Prefix: "hk_live_abc", KeyHash: ids.RandomAlnum(64), CreatedAt: store.Now()}
					created[i], errs[i] = s.Bootstrap(ctx, p, k)
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			n := 0
			for _, c := range created {
				if c {
					n++
				}
			}
			require.Equal(t, 1, n)
			ps, err := s.ListProjects(ctx)
			require.NoError(t, err)
			require.Len(t, ps, 1)
		})
	}
}

func TestOpenReportsUnreachableDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := store.Open(ctx, store.Options{DatabaseURL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"})
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorContains(t, err, "127.0.0.1:1")
}
