package builder

// State is the state of a step in an Event.
type State string

// Step states reported to an Observer.
const (
	StateCached  State = "cached"
	StateWaiting State = "waiting" // another process that shares the cache builds it
	StateRunning State = "running"
	StateDone    State = "done"
	StateFailed  State = "failed"
	// StateCancelled: the step was running when another step failed or
	// the build was interrupted, and it was stopped.
	StateCancelled State = "cancelled"
)

// Event reports progress of one step.
type Event struct {
	Step  string // "block.name:step"
	State State
	Done  int64 // progress while running; Total <= 0 when unknown
	Total int64
	// Stage, in a running event, names the stage the step just entered
	// ("configure", "build 6.12.117"); empty in plain progress events.
	Stage string
	// Unit is what Done and Total count from this stage on ("Kbuild
	// commands"); "" for bytes. Set with Stage.
	Unit string
	Err  error // why the step failed
}

// Observer receives events from concurrently running steps; it must be safe
// for concurrent use.
type Observer interface{ Event(Event) }

type nopObserver struct{}

func (nopObserver) Event(Event) {}
