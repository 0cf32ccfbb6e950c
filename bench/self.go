package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// SelfCost is what the bench itself spent, summed over its worker
// processes, so that a reader can tell the bench was not the bottleneck.
//
// Memory per client is measured as the growth of resident memory (and of
// the Go heap plus goroutine stacks) between just before the first
// connection and the end of the connect phase, after a GC, divided by the
// clients then connected. CPU per client is the CPU time spent during the
// publish (or hold) phase over that phase's wall time: cores busy.
type SelfCost struct {
	Processes      int     `json:"processes"`
	Clients        int64   `json:"clients"`          // connected at the end of the connect phase
	BaselineRSS    int64   `json:"baseline_rss"`     // bytes, before connecting
	ReadyRSS       int64   `json:"ready_rss"`        // bytes, after connecting
	PeakRSS        int64   `json:"peak_rss"`         // bytes, highest seen
	BaselineGo     int64   `json:"baseline_go"`      // Go heap in use + stacks, before
	ReadyGo        int64   `json:"ready_go"`         // after connecting
	CPUSeconds     float64 `json:"cpu_seconds"`      // whole run
	PhaseCPU       float64 `json:"phase_cpu"`        // CPU seconds in the publish/hold phase
	PhaseSeconds   float64 `json:"phase_seconds"`    // wall seconds of that phase (max over workers)
	BytesPerClient float64 `json:"bytes_per_client"` // RSS growth / clients
	GoPerClient    float64 `json:"go_bytes_per_client"`
	// CoresPer10k is the cores busy during the publish/hold phase, per
	// 10,000 connected clients.
	CoresPer10k float64 `json:"cores_per_10k_clients"`
	Cores       float64 `json:"cores"` // cores busy during the phase
}

func (s *SelfCost) add(o SelfCost) {
	s.Processes += o.Processes
	s.Clients += o.Clients
	s.BaselineRSS += o.BaselineRSS
	s.ReadyRSS += o.ReadyRSS
	s.PeakRSS += o.PeakRSS
	s.BaselineGo += o.BaselineGo
	s.ReadyGo += o.ReadyGo
	s.CPUSeconds += o.CPUSeconds
	s.PhaseCPU += o.PhaseCPU
	s.PhaseSeconds = max(s.PhaseSeconds, o.PhaseSeconds)
}

func (s *SelfCost) derive() {
	if s.Clients > 0 {
		s.BytesPerClient = float64(s.ReadyRSS-s.BaselineRSS) / float64(s.Clients)
		s.GoPerClient = float64(s.ReadyGo-s.BaselineGo) / float64(s.Clients)
	}
	if s.PhaseSeconds > 0 {
		s.Cores = s.PhaseCPU / s.PhaseSeconds
		if s.Clients > 0 {
			s.CoresPer10k = s.Cores / float64(s.Clients) * 10000
		}
	}
}

// cpuSeconds is this process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// rss is this process's resident memory in bytes (Linux; 0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// goMemory collects garbage, then returns the Go heap in use plus
// goroutine stacks.
func goMemory() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
