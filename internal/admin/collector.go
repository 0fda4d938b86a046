package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-relay/sluice/internal/queue"
)

// queueCollector reports each queue's length, age and state at scrape
// time, so the numbers are never stale.
type queueCollector struct{ q *queue.Queue }

var (
	descLength = prometheus.NewDesc("sluice_queue_messages", "Messages waiting in the queue (next hop).", []string{"queue", "status"}, nil)
	descOldest = prometheus.NewDesc("sluice_queue_oldest_message_age_seconds", "Age of the oldest message in the queue.", []string{"queue"}, nil)
	descRetry  = prometheus.NewDesc("sluice_queue_retry_count", "Connection-level failures in a row of the queue's next hop.", []string{"queue"}, nil)
	descTotal  = prometheus.NewDesc("sluice_queued_messages", "Messages in the queue store.", nil, nil)
)

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLength
	ch <- descOldest
	ch <- descRetry
	ch <- descTotal
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, qi := range c.q.Queues() {
		ch <- prometheus.MustNewConstMetric(descLength, prometheus.GaugeValue, float64(qi.MessageCount), qi.Identity, qi.Status)
		age := 0.0
		if !qi.OldestMessage.IsZero() {
			age = now.Sub(qi.OldestMessage).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, qi.Identity)
		ch <- prometheus.MustNewConstMetric(descRetry, prometheus.GaugeValue, float64(qi.RetryCount), qi.Identity)
	}
	ch <- prometheus.MustNewConstMetric(descTotal, prometheus.GaugeValue, float64(c.q.Len()))
}
