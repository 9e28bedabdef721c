package dev.outbox.relay.process;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;

/**
 * Publishes the relay producer's own Kafka metrics (send rate, errors, retries, request latency,
 * buffer use, per-topic and per-node figures) as meters in the process's Micrometer registry, so
 * they appear on {@code /metrics} next to the relay's. Kafka creates one instance per producer
 * through the producer property {@code metric.reporters}; the relay may replace its producer after
 * a fatal error, and a replaced producer's meters go with it. Names follow Micrometer's {@code
 * KafkaClientMetrics}: {@code kafka.producer.record.send.total} with the Kafka tags ({@code
 * client.id}, {@code topic}, {@code node.id}).
 */
public final class KafkaProducerMetrics implements MetricsReporter {
    private static volatile MeterRegistry registry;

    private final Map<MetricName, Meter> meters = new ConcurrentHashMap<>();

    /**
     * @param processRegistry the registry of the one relay process in this JVM
     */
    static void bindTo(MeterRegistry processRegistry) {
        registry = processRegistry;
    }

    /**
     * @param producer the producer properties the relay will use
     * @return them with this reporter added to {@code metric.reporters}, after any the operator gave
     */
    static Map<String, Object> addTo(Map<String, Object> producer) {
        Object given = producer.get("metric.reporters");
        String mine = KafkaProducerMetrics.class.getName();
        String reporters = given == null || given.toString().isBlank() ? mine : given + "," + mine;
        producer.put("metric.reporters", reporters);
        return producer;
    }

    @Override
    public void configure(Map<String, ?> configs) {
        // nothing to configure: the registry is the process's
    }

    @Override
    public void init(List<KafkaMetric> metrics) {
        metrics.forEach(this::metricChange);
    }

    @Override
    public void metricChange(KafkaMetric metric) {
        MeterRegistry r = registry;
        if (r == null || !(metric.metricValue() instanceof Number)) {
            return;
        }
        MetricName name = metric.metricName();
        metricRemoval(metric);
        List<Tag> tags = new ArrayList<>();
        name.tags().forEach((k, v) -> tags.add(Tag.of(k.replace('-', '.'), v)));
        // Kafka's cumulative "-total" metrics are counters (Prometheus: ..._total), the rest gauges
        Meter meter = name.name().endsWith("-total")
                ? FunctionCounter.builder(meterName(name), metric, KafkaProducerMetrics::value)
                        .description(name.description())
                        .tags(tags)
                        .register(r)
                : Gauge.builder(meterName(name), metric, KafkaProducerMetrics::value)
                        .description(name.description())
                        .tags(tags)
                        .register(r);
        meters.put(name, meter);
    }

    @Override
    public void metricRemoval(KafkaMetric metric) {
        Meter meter = meters.remove(metric.metricName());
        MeterRegistry r = registry;
        if (meter != null && r != null) {
            r.remove(meter);
        }
    }

    @Override
    public void close() {
        MeterRegistry r = registry;
        if (r != null) {
            meters.values().forEach(r::remove);
        }
        meters.clear();
    }

    private static double value(KafkaMetric metric) {
        return metric.metricValue() instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    /** {@code producer-metrics}, {@code record-send-total} → {@code kafka.producer.record.send.total}. */
    static String meterName(MetricName name) {
        String group = name.group().replaceFirst("-metrics$", "");
        return ("kafka." + group + "." + name.name()).replace('-', '.').toLowerCase(Locale.ROOT);
    }
}
