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
)

// Event reports progress of one step.
type Event struct {
	Step  string // "block.name:step"
	State State
	Done  int64 // progress while running; Total <= 0 when unknown
	Total int64
	Err   error
}

// Observer receives events from concurrently running steps; it must be safe
// for concurrent use.
type Observer interface{ Event(Event) }

type nopObserver struct{}

func (nopObserver) Event(Event) {}
