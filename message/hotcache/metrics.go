package hotcache

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reads                                         *prometheus.CounterVec
	hotHit, hotShared, hotMiss                    prometheus.Counter
	innerHit, innerPartial, innerMiss, innerError prometheus.Counter
	invalidations                                 *prometheus.CounterVec
	sent, received, publishErrors                 prometheus.Counter
}

func newMetrics() metrics {
	reads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guildhall_message_cache_reads_total",
		Help: "Latest reads of the history caches by tier and result. tier=hot: hit (served from this node's memory), shared (waited for another reader's load), miss (went to the central cache). tier=central: hit (complete window), partial (incomplete window), miss (nothing cached), error.",
	}, []string{"tier", "result"})
	inv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guildhall_message_cache_invalidations_total",
		Help: "Hot-cache invalidations over the bus: sent, received (from other nodes), publish_error.",
	}, []string{"event"})
	return metrics{
		reads:         reads,
		hotHit:        reads.WithLabelValues("hot", "hit"),
		hotShared:     reads.WithLabelValues("hot", "shared"),
		hotMiss:       reads.WithLabelValues("hot", "miss"),
		innerHit:      reads.WithLabelValues("central", "hit"),
		innerPartial:  reads.WithLabelValues("central", "partial"),
		innerMiss:     reads.WithLabelValues("central", "miss"),
		innerError:    reads.WithLabelValues("central", "error"),
		invalidations: inv,
		sent:          inv.WithLabelValues("sent"),
		received:      inv.WithLabelValues("received"),
		publishErrors: inv.WithLabelValues("publish_error"),
	}
}

func (m metrics) register(r prometheus.Registerer, c *Cache) error {
	hot := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "guildhall_message_cache_hot_channels",
		Help: "Channels whose latest messages this node holds in memory.",
	}, func() float64 { return float64(c.hot.Load()) })
	for _, col := range []prometheus.Collector{m.reads, m.invalidations, hot} {
		if err := r.Register(col); err != nil {
			return err
		}
	}
	return nil
}
