package store

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func openPebble(t testing.TB, dir string) *Pebble {
	t.Helper()
	p, err := OpenPebble(dir, PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPebble(t *testing.T) {
	runSuite(t, func(t *testing.T) Store { return openPebble(t, t.TempDir()) })
}

func TestPebbleReopenKeepsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	p := openPebble(t, dir)
	must(t, p.SaveSession(fullSession("a")))
	must(t, p.SaveSession(fullSession("gone")))
	var entries []Entry
	for seq := uint64(1); seq <= 4; seq++ {
		entries = append(entries, Entry{ClientID: "a", Msg: fullMessage(seq)}, Entry{ClientID: "gone", Msg: fullMessage(seq)})
	}
	must(t, p.AppendMessages(entries))
	must(t, p.UpdateMessage("a", 2, 9, AwaitingAck)) // lazily synced, made durable by Close
	must(t, p.DeleteMessage("a", 3))
	must(t, p.AddIncoming("a", 7))
	must(t, p.AddIncoming("gone", 7))
	must(t, p.DeleteSession("gone"))
	must(t, p.SaveRetained(fullMessage(0)))
	must(t, p.Close())

	p = openPebble(t, dir)
	defer p.Close()
	sessions, err := p.LoadSessions()
	must(t, err)
	if len(sessions) != 1 || !reflect.DeepEqual(normSession(sessions[0]), normSession(fullSession("a"))) {
		t.Fatalf("sessions after reopen = %+v", sessions)
	}
	m2 := fullMessage(2)
	m2.PacketID, m2.State = 9, AwaitingAck
	wantMessages(t, mustLoadMessages(t, p, "a"), []*Message{fullMessage(1), m2, fullMessage(4)})
	wantMessages(t, mustLoadMessages(t, p, "gone"), nil)
	inc, err := p.LoadIncoming("a")
	must(t, err)
	if !reflect.DeepEqual(inc, []uint16{7}) {
		t.Fatalf("incoming after reopen = %v", inc)
	}
	ret, err := p.LoadRetained()
	must(t, err)
	wantMessages(t, ret, []*Message{fullMessage(0)})
}

func TestPebbleOpenCreatesMissingAndEmptyDirs(t *testing.T) {
	mounted := t.TempDir()
	must(t, os.Mkdir(filepath.Join(mounted, "lost+found"), 0o700))
	for name, dir := range map[string]string{
		"missing":           filepath.Join(t.TempDir(), "x", "data"),
		"empty":             t.TempDir(),
		"volumeWithLostDir": mounted,
	} {
		t.Run(name, func(t *testing.T) {
			p := openPebble(t, dir)
			must(t, p.Close())
			p = openPebble(t, dir) // and it is a Herald store now
			must(t, p.Close())
		})
	}
}

// TestPebbleOpenRefusesWhatIsNotAHeraldStore proves that a directory the
// store cannot trust is an error naming the directory and the cause, and
// never an empty store.
func TestPebbleOpenRefusesWhatIsNotAHeraldStore(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) string // returns the path to open
		cause   string
	}{
		{"ForeignFiles", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "notes.txt"), "hello")
			return dir
		}, "not a Herald store"},
		{"GarbagePebbleFiles", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "CURRENT"), "MANIFEST-000001\n")
			writeFile(t, filepath.Join(dir, "MANIFEST-000001"), strings.Repeat("\xde\xad\xbe\xef", 1000))
			writeFile(t, filepath.Join(dir, "000002.log"), strings.Repeat("garbage", 1000))
			return dir
		}, "pebble"},
		{"CorruptManifestOfARealStore", func(t *testing.T, dir string) string {
			p := openPebble(t, dir)
			must(t, p.SaveSession(fullSession("a")))
			must(t, p.Close())
			manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			if len(manifests) == 0 {
				t.Fatal("no MANIFEST written")
			}
			for _, m := range manifests {
				writeFile(t, m, strings.Repeat("\x00garbage", 512))
			}
			return dir
		}, "pebble"},
		{"NotADirectory", func(t *testing.T, dir string) string {
			f := filepath.Join(dir, "file")
			writeFile(t, f, "x")
			return f
		}, "not a directory"},
		{"ForeignPebbleDatabase", func(t *testing.T, dir string) string {
			db, err := pebble.Open(dir, &pebble.Options{Logger: slogLogger{slog.New(slog.DiscardHandler)}})
			must(t, err)
			must(t, db.Set([]byte("k"), []byte("v"), pebble.Sync))
			must(t, db.Close())
			return dir
		}, "without Herald's format key"},
		{"UnknownFormatVersion", func(t *testing.T, dir string) string {
			p := openPebble(t, dir)
			must(t, p.db.Set(formatKey, binary.BigEndian.AppendUint32(nil, 2), pebble.Sync))
			must(t, p.Close())
			return dir
		}, "unknown store format version 2"},
		{"MalformedFormatKey", func(t *testing.T, dir string) string {
			p := openPebble(t, dir)
			must(t, p.db.Set(formatKey, []byte("v1"), pebble.Sync))
			must(t, p.Close())
			return dir
		}, "format key holds 2 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.prepare(t, t.TempDir())
			p, err := OpenPebble(path, PebbleOptions{})
			if err == nil {
				p.Close()
				t.Fatalf("OpenPebble(%s) succeeded", path)
			}
			t.Log(err)
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, tc.cause) {
				t.Fatalf("error %q does not name the directory %s and the cause %q", msg, path, tc.cause)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPebbleOpenUnreadableDirIsAnError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any directory")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "x")
	must(t, os.Chmod(dir, 0))
	defer os.Chmod(dir, 0o700)
	if p, err := OpenPebble(dir, PebbleOptions{}); err == nil {
		p.Close()
		t.Fatal("OpenPebble of an unreadable directory succeeded")
	} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("error %q does not name the directory and the cause", err)
	}
}

func TestPebbleOpenTwiceIsRefused(t *testing.T) {
	dir := t.TempDir()
	p := openPebble(t, dir)
	defer p.Close()
	if q, err := OpenPebble(dir, PebbleOptions{}); err == nil {
		q.Close()
		t.Fatal("second OpenPebble of an open store succeeded")
	} else if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the directory", err)
	}
}

func TestPebbleCorruptRecordIsAnErrorNamingTheKey(t *testing.T) {
	p := openPebble(t, t.TempDir())
	defer p.Close()
	must(t, p.AppendMessages([]Entry{{ClientID: "c", Msg: fullMessage(1)}}))
	val := appendMessage(nil, fullMessage(2))
	must(t, p.db.Set(messageKey(nil, "c", 2), val[:len(val)-3], pebble.Sync))
	must(t, p.db.Set([]byte(prefixSession+"x"), []byte{sessionRecordV1 + 1}, pebble.Sync))

	_, err := p.LoadMessages("c")
	if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), `m/c\x00`) {
		t.Fatalf("LoadMessages of a truncated record = %v, want a corrupt-record error naming the key", err)
	}
	_, err = p.LoadSessions()
	if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "version") {
		t.Fatalf("LoadSessions of an unknown record version = %v, want a corrupt-record error", err)
	}
}

func TestPebbleCompactDropsDeletedSessions(t *testing.T) {
	p := openPebble(t, t.TempDir())
	defer p.Close()
	for i := range 100 {
		id := string(rune('a' + i%26))
		must(t, p.AppendMessages([]Entry{{ClientID: id, Msg: &Message{Seq: uint64(i), Payload: make([]byte, 1024)}}}))
	}
	for i := range 26 {
		must(t, p.DeleteSession(string(rune('a'+i))))
	}
	must(t, p.Compact())
	for i := range 26 {
		if msgs := mustLoadMessages(t, p, string(rune('a'+i))); len(msgs) != 0 {
			t.Fatalf("after Compact, %d messages of a deleted session", len(msgs))
		}
	}
	if n := p.db.Metrics().Total().TablesCount; n > 1 {
		t.Logf("%d sstables after compaction", n)
	}
}

// TestPebbleConcurrentAppendsShareFsyncs proves group commit: durable
// appends from many goroutines need fewer WAL fsyncs than appends.
func TestPebbleConcurrentAppendsShareFsyncs(t *testing.T) {
	p := openPebble(t, t.TempDir())
	defer p.Close()
	before := p.Stats()
	const writers, perWriter = 64, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := string(rune('A' + w))
			for seq := range uint64(perWriter) {
				if err := p.AppendMessages([]Entry{{ClientID: id, Msg: &Message{Seq: seq, Topic: "t", Payload: make([]byte, 100)}}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s := p.Stats()
	commits, syncs := s.SyncCommits-before.SyncCommits, s.WALSyncs-before.WALSyncs
	if commits != writers*perWriter {
		t.Fatalf("SyncCommits = %d, want %d", commits, writers*perWriter)
	}
	if syncs == 0 || syncs >= commits {
		t.Fatalf("%d durable commits took %d WAL fsyncs: no group commit", commits, syncs)
	}
	t.Logf("%d durable commits, %d WAL fsyncs (%.1f commits per fsync), mean commit %v, mean fsync %v",
		commits, syncs, float64(commits)/float64(syncs),
		s.CommitLatency/time.Duration(s.Commits), s.WALSyncLatency/time.Duration(s.WALSyncs))
}
