package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taxflow/taxflow/internal/keyrate"
)

// The key-rate table against the Board of Russia's meeting calendar (internal/keyrate).
const (
	KeyRateCheckedThrough = "taxflow_keyrate_checked_through_timestamp_seconds"
	KeyRateLastMeeting    = "taxflow_keyrate_last_board_meeting_timestamp_seconds"
	KeyRateMissedMeetings = "taxflow_keyrate_missed_board_meetings"
	KeyRateCalendarEnds   = "taxflow_keyrate_calendar_ends_timestamp_seconds"
)

// RegisterKeyRate adds the key-rate gauges, computed at each scrape from the table the
// worker computes interest with (table: keyrate.Live.Cached, no I/O) at now.
func (m *Metrics) RegisterKeyRate(table func() *keyrate.Table, now func() time.Time) {
	fresh := func() keyrate.Freshness { return table().Freshness(now()) }
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}
	decided := func(day time.Time) time.Time {
		if day.IsZero() {
			return day
		}
		return time.Date(day.Year(), day.Month(), day.Day(), keyrate.DecisionHour, keyrate.DecisionMinute, 0, 0, day.Location())
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: KeyRateCheckedThrough,
			Help: "The last day the key-rate table is known complete (start of the Moscow day), Unix seconds."},
			func() float64 { return unix(fresh().CheckedThrough) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: KeyRateLastMeeting,
			Help: "The last scheduled Board meeting on the key rate whose decision is published (13:30 Moscow), Unix seconds; 0 when none is known."},
			func() float64 { return unix(decided(fresh().LastMeeting)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: KeyRateMissedMeetings,
			Help: "Board meetings already decided after the table's checked_through: decisions the interest on late refunds may lack."},
			func() float64 { return float64(len(fresh().Missed)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: KeyRateCalendarEnds,
			Help: "The decision time of the last Board meeting the calendar knows, Unix seconds; after it a missed decision cannot be told."},
			func() float64 { return unix(decided(fresh().CalendarEnds)) }),
	)
}
