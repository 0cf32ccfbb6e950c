package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// stats are the live counters behind Stats.
type stats struct {
	commits, syncCommits atomic.Uint64
	commitNanos          atomic.Int64
	walSyncs             atomic.Uint64
	walSyncNanos         atomic.Int64
}

func (s *stats) commit(d time.Duration, sync bool) {
	s.commits.Add(1)
	if sync {
		s.syncCommits.Add(1)
	}
	s.commitNanos.Add(int64(d))
}

func (s *stats) walSync(d time.Duration) {
	s.walSyncs.Add(1)
	s.walSyncNanos.Add(int64(d))
}

func (s *stats) snapshot() Stats {
	return Stats{
		Commits:        s.commits.Load(),
		SyncCommits:    s.syncCommits.Load(),
		CommitLatency:  time.Duration(s.commitNanos.Load()),
		WALSyncs:       s.walSyncs.Load(),
		WALSyncLatency: time.Duration(s.walSyncNanos.Load()),
	}
}

// countingFS counts the fsyncs of WAL files. Pebble exports its WAL fsync
// latency only as a Prometheus histogram; counting at the file system is
// exact, cheap, and keeps this package free of a metrics dependency.
type countingFS struct {
	vfs.FS
	stats *stats
}

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs *countingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !isWAL(name) {
		return f, err
	}
	return &countingFile{File: f, stats: fs.stats}, nil
}

// Create creates a file, counting its syncs if it is a WAL.
func (fs *countingFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.wrap(name, f, err)
}

// ReuseForWrite recycles an old WAL as a new one, counting its syncs.
func (fs *countingFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

// countingFile is a WAL file whose syncs are counted and timed.
type countingFile struct {
	vfs.File
	stats *stats
}

func (f *countingFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.stats.walSync(time.Since(start))
	return err
}

func (f *countingFile) SyncData() error {
	start := time.Now()
	err := f.File.SyncData()
	f.stats.walSync(time.Since(start))
	return err
}

func (f *countingFile) SyncTo(length int64) (bool, error) {
	start := time.Now()
	full, err := f.File.SyncTo(length)
	if full {
		f.stats.walSync(time.Since(start))
	}
	return full, err
}

// slogLogger passes Pebble's log to slog. Pebble's informational messages
// (WAL recovery, compactions) go to Debug: at Info they would be noise in
// the broker's log.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	// Pebble reports every write-ahead log replay as "stopped reading at
	// offset", at the clean end of a log as after a torn or corrupt record,
	// so that line cannot tell lost data from a normal restart; a store
	// whose log lost everything is refused at open instead (checkFormat).
	s.l.Debug("pebble: "+fmt.Sprintf(format, args...), "component", "store")
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error("pebble: "+fmt.Sprintf(format, args...), "component", "store")
}

// Fatalf is called by Pebble on a broken invariant, and when its log
// cannot be written (a full disk): its commit pipeline cannot go on. It
// logs and panics, rather than exiting as Pebble's default logger does, so
// that a test's report still runs; on the broker's committer goroutine the
// panic ends the process at once (docs/operations.md, "A full disk").
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	s.l.Log(context.Background(), slog.LevelError, msg, "component", "store")
	panic(msg)
}

// Unwrap returns the file system whose WAL syncs are counted.
func (fs *countingFS) Unwrap() vfs.FS { return fs.FS }
