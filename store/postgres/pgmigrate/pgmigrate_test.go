package pgmigrate

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
)

// files returns a set of migration files, name to SQL.
func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, sql := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return fsys
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []int // versions; nil means ErrBadMigrations
	}{
		{"one", map[string]string{"0001_users.sql": "x"}, []int{1}},
		{"ordered by number, not name", map[string]string{"10_j.sql": "", "9_i.sql": "", "1_a.sql": "", "2_b.sql": "",
			"3_c.sql": "", "4_d.sql": "", "5_e.sql": "", "6_f.sql": "", "7_g.sql": "", "8_h.sql": ""},
			[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"none", map[string]string{}, nil},
		{"gap", map[string]string{"0001_a.sql": "", "0003_c.sql": ""}, nil},
		{"starts at 0", map[string]string{"0000_a.sql": ""}, nil},
		{"duplicate version", map[string]string{"0001_a.sql": "", "1_b.sql": ""}, nil},
		{"no number", map[string]string{"users.sql": ""}, nil},
		{"no description", map[string]string{"0001.sql": ""}, nil},
		{"not .sql", map[string]string{"0001_users.txt": ""}, nil},
		{"upper case", map[string]string{"0001_Users.sql": ""}, nil},
		{"directory", map[string]string{"0001_users.sql/x": ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := load(files(tt.files))
			if tt.want == nil {
				if !errors.Is(err, ErrBadMigrations) {
					t.Fatalf("load: got %v, %v; want ErrBadMigrations", ms, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: got %v, want no error", err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("load: got versions %v, want %v", got, tt.want)
			}
		})
	}
}

// newPool returns a pool on a fresh schema.
func newPool(t *testing.T) *pgxpool.Pool {
	pool, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// mustRun runs Run and fails the test unless it applies want migrations.
func mustRun(t *testing.T, pool *pgxpool.Pool, component string, fsys fstest.MapFS, want int) {
	t.Helper()
	got, err := Run(t.Context(), pool, component, fsys)
	if err != nil || got != want {
		t.Fatalf("Run(%s): got %d, %v; want %d, nil", component, got, err, want)
	}
}

// recorded returns the versions of component in schema_migrations.
func recorded(t *testing.T, pool *pgxpool.Pool, component string) []int {
	t.Helper()
	rows, _ := pool.Query(t.Context(), `SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version`, component)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

// notes returns the values in table notes, in order.
func notes(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, _ := pool.Query(t.Context(), `SELECT n FROM notes ORDER BY n`)
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

var (
	v1 = map[string]string{"0001_notes.sql": "CREATE TABLE notes (n integer); INSERT INTO notes VALUES (1);"}
	v2 = map[string]string{"0001_notes.sql": v1["0001_notes.sql"], "0002_more.sql": "INSERT INTO notes VALUES (2);"}
	v3 = map[string]string{"0001_notes.sql": v1["0001_notes.sql"], "0002_more.sql": v2["0002_more.sql"],
		"0003_even_more.sql": "INSERT INTO notes VALUES (3);"}
)

// Each migration runs once, new ones are applied on the next start, and
// components count their versions apart.
func TestRunAppliesEachOnce(t *testing.T) {
	pool := newPool(t)
	mustRun(t, pool, "a", files(v1), 1)
	mustRun(t, pool, "a", files(v1), 0)
	mustRun(t, pool, "a", files(v2), 1)
	mustRun(t, pool, "b", files(map[string]string{"0001_other.sql": "CREATE TABLE other (x text)"}), 1)
	if got, want := notes(t, pool), []int{1, 2}; !slices.Equal(got, want) {
		t.Errorf("notes: got %v, want %v", got, want)
	}
	if got, want := recorded(t, pool, "a"), []int{1, 2}; !slices.Equal(got, want) {
		t.Errorf("versions of a: got %v, want %v", got, want)
	}
	if got, want := recorded(t, pool, "b"), []int{1}; !slices.Equal(got, want) {
		t.Errorf("versions of b: got %v, want %v", got, want)
	}
}

// A node of an older tether starts on a database that a newer one
// migrated further: nothing to do, no error.
func TestRunLeavesNewerVersions(t *testing.T) {
	pool := newPool(t)
	mustRun(t, pool, "a", files(v3), 3)
	mustRun(t, pool, "a", files(v2), 0)
	if got, want := recorded(t, pool, "a"), []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}
}

// A failing migration leaves the database as it was: the ones before it
// in the same start are undone too, and nothing is recorded.
func TestRunFailureChangesNothing(t *testing.T) {
	pool := newPool(t)
	mustRun(t, pool, "a", files(v1), 1)
	broken := files(v3)
	broken["0003_even_more.sql"].Data = []byte("INSERT INTO no_such_table VALUES (3);")
	if n, err := Run(t.Context(), pool, "a", broken); err == nil {
		t.Fatalf("Run with a broken migration: got %d, nil; want an error", n)
	}
	if got, want := notes(t, pool), []int{1}; !slices.Equal(got, want) {
		t.Errorf("notes: got %v, want %v", got, want)
	}
	if got, want := recorded(t, pool, "a"), []int{1}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}
	mustRun(t, pool, "a", files(v3), 2)
}

// Nodes starting at once on a fresh schema, over several pools: none
// fails, and each migration runs exactly once.
func TestRunConcurrentStarts(t *testing.T) {
	newPool := pgtest.Schema(t)
	var pools [2]*pgxpool.Pool
	for i := range pools {
		p, err := newPool()
		if err != nil {
			t.Fatal(err)
		}
		pools[i] = p
	}
	const starts = 8
	applied := make([]int, starts)
	errs := make([]error, starts)
	var wg sync.WaitGroup
	for i := range starts {
		wg.Go(func() { applied[i], errs[i] = Run(t.Context(), pools[i%2], "a", files(v3)) })
	}
	wg.Wait()
	total := 0
	for i := range starts {
		if errs[i] != nil {
			t.Errorf("start %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != 3 {
		t.Errorf("migrations applied over all starts: got %d, want 3", total)
	}
	if got, want := notes(t, pools[1]), []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("notes: got %v, want %v", got, want)
	}
}
