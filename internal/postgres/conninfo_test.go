package postgres

import "testing"

func TestBuildConnInfo(t *testing.T) {
	cases := []struct {
		host, port, user, dbname string
		want                     string
	}{
		// Expected values come from barman.clients.cloud_backup.build_conninfo.
		{"", "", "", "postgres", "dbname=postgres"},
		{"db.example", "5432", "barman", "postgres", "host=db.example port=5432 user=barman dbname=postgres"},
		{"/var/run/postgresql", "", "", "", ""},
		{"h", "", "", "host=x dbname=y", "host=x dbname=y"},
		{"my host", "54 32", "us'er", "my db", `host='my host' port='54 32' user=us'er dbname='my db'`},
		{"h", "", "u", `a\b c`, `host=h user=u dbname='a\\b c'`},
		{"", "", "", "name\twith\ttab", "dbname='name\twith\ttab'"},
		{"h", "", "o'brien", "d", "host=h user=o'brien dbname=d"},
		{"h", "", "", "it's mine", `host=h dbname='it\'s mine'`},
		// Deviation: pgx does not expand a URL given as dbname, so it is
		// used as the whole connection string.
		{"h", "", "", "postgresql://u@h/db", "postgresql://u@h/db"},
	}
	for _, c := range cases {
		if got := BuildConnInfo(c.host, c.port, c.user, c.dbname); got != c.want {
			t.Errorf("BuildConnInfo(%q, %q, %q, %q) = %q, want %q", c.host, c.port, c.user, c.dbname, got, c.want)
		}
	}
}

func TestQuoteConnInfo(t *testing.T) {
	for in, want := range map[string]string{"": "''", "abc": "abc", "a b": "'a b'", `a\'b c`: `'a\\\'b c'`} {
		if got := quoteConnInfo(in); got != want {
			t.Errorf("quoteConnInfo(%q) = %q, want %q", in, got, want)
		}
	}
}
