package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is a process found by ProcessesWithEnv.
type Process struct {
	PID  int
	Comm string // the command name, as in /proc/PID/comm
}

// ProcessesWithEnv lists the live processes whose environment holds the
// entry kv ("NAME=value"). Tests give the commands they start a unique
// marker entry, which every descendant inherits, and so find what a
// command left running. Zombies (exited, not yet reaped) are not listed.
func ProcessesWithEnv(kv string) []Process {
	want := []byte(kv)
	var out []Process
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		found := false
		for _, v := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(v, want) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		out = append(out, Process{PID: pid, Comm: strings.TrimSpace(string(comm))})
	}
	return out
}
