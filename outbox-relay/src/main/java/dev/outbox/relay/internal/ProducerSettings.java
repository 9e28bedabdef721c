package dev.outbox.relay.internal;

import dev.outbox.core.internal.Durations;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Validates the user's producer properties and adds the ones the relay enforces or defaults. */
public final class ProducerSettings {
    static final int MAX_IN_FLIGHT = 5;

    /** The default of {@code max.in.flight.requests.per.connection}: see {@link #validate}. */
    static final String DEFAULT_MAX_IN_FLIGHT = "1";

    /** The longest default {@code max.block.ms}: see {@link #boundSendWait}. */
    static final long DEFAULT_MAX_BLOCK_MS = 10_000;

    /** The shortest default {@code max.block.ms}, when {@code delivery.timeout.ms} takes the whole margin. */
    static final long MIN_MAX_BLOCK_MS = 100;

    private static final Logger LOG = LoggerFactory.getLogger(ProducerSettings.class);

    /** Properties that can change a record's key or partition: refused, since per-key order depends on both. */
    static final List<String> KEY_MAPPING = List.of(
            ProducerConfig.PARTITIONER_CLASS_CONFIG,
            ProducerConfig.PARTITIONER_IGNORE_KEYS_CONFIG,
            ProducerConfig.INTERCEPTOR_CLASSES_CONFIG);

    private ProducerSettings() {}

    /**
     * @param given the user's properties
     * @param instanceId the relay's id, for the default {@code client.id}
     * @return the complete producer configuration
     * @throws IllegalArgumentException naming the property when one is missing or conflicts
     */
    public static Map<String, Object> validate(Map<String, ?> given, String instanceId) {
        Map<String, Object> p = new LinkedHashMap<>();
        for (var e : given.entrySet()) {
            if (e.getKey() == null) {
                throw new IllegalArgumentException("producerProperties contains a null name; remove it");
            }
            if (e.getValue() == null) {
                throw new IllegalArgumentException(
                        "producer property " + e.getKey() + " has a null value; give a value or remove it");
            }
            p.put(e.getKey(), e.getValue());
        }
        Object bootstrap = p.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG);
        if (bootstrap == null || text(bootstrap).isBlank()) {
            throw new IllegalArgumentException(
                    "producer property bootstrap.servers is missing: add it to producerProperties, e.g. \"bootstrap.servers\" -> \"kafka:9092\"");
        }
        requireOneOf(
                p,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
                "true",
                "the relay needs the idempotent producer to keep per-key order across retries");
        requireOneOf(
                p,
                ProducerConfig.ACKS_CONFIG,
                "all",
                "the relay deletes a row only after every in-sync replica has it; anything weaker can lose acknowledged messages");
        requireSerializer(p, ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG);
        requireSerializer(p, ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG);
        if (p.containsKey(ProducerConfig.TRANSACTIONAL_ID_CONFIG)) {
            throw new IllegalArgumentException("producer property transactional.id is not supported (got '"
                    + text(p.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG))
                    + "'): the relay sets it itself, per shard, in the transactional publish mode (Relay.builder()"
                    + ".publishMode(TRANSACTIONAL), process setting publish-mode=transactional, with transactionalIdPrefix /"
                    + " transactional-id-prefix for its prefix); remove it");
        }
        for (String name : KEY_MAPPING) {
            if (p.containsKey(name)) {
                throw new IllegalArgumentException(
                        "producer property " + name + " is not supported (got '" + text(p.get(name))
                                + "'): it can send one key's messages to several partitions or change them on the way, which breaks their"
                                + " order; remove it (the relay uses Kafka's default key hash)");
            }
        }
        Object inFlight = p.get(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION);
        if (inFlight != null) {
            int n = integer(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, inFlight);
            if (n < 1 || n > MAX_IN_FLIGHT) {
                throw new IllegalArgumentException(
                        "producer property max.in.flight.requests.per.connection must be between 1 and " + MAX_IN_FLIGHT
                                + ", got " + n
                                + ": above 5 the idempotent producer no longer keeps order; remove it or lower it");
            }
        }
        Object retries = p.get(ProducerConfig.RETRIES_CONFIG);
        if (retries != null && integer(ProducerConfig.RETRIES_CONFIG, retries) < 1) {
            throw new IllegalArgumentException(
                    "producer property retries must be at least 1 for the idempotent producer, got " + text(retries)
                            + ": remove it");
        }
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.putIfAbsent(ProducerConfig.CLIENT_ID_CONFIG, "outbox-relay-" + instanceId);
        // a batch is handed to the producer in one loop, so its records fill the producer's batches without
        // lingering; waiting would only delay the last partial batch of each partition (idle latency)
        p.putIfAbsent(ProducerConfig.LINGER_MS_CONFIG, "0");
        // one request per broker at a time: a partition's next batch is not on the wire while the one
        // before it may still fail. With more, a new producer whose first batch to a partition is refused
        // (a timestamp bound, a request timeout) can have its second batch accepted as that producer's
        // first by a broker that holds no state for it, so a key's later message lands before its earlier
        // one, which KeyOrder cannot recall once the request is sent (ENGINE.md, "Per-key order inside one
        // batch")
        p.putIfAbsent(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, DEFAULT_MAX_IN_FLIGHT);
        p.putIfAbsent(ProducerConfig.BATCH_SIZE_CONFIG, "65536");
        // max.block.ms: set by boundSendWait, which bounds it with the delivery timeout
        return p;
    }

    /**
     * The transactional publish mode keeps Kafka's default of {@value #MAX_IN_FLIGHT} requests in
     * flight unless the user set one: a failed record aborts its whole transaction there, so a later
     * batch written ahead of a refused one never becomes visible to a {@code read_committed}
     * consumer, and fewer records share a producer batch with a record the broker refuses.
     *
     * @param p the properties from {@link #validate}, changed in place
     * @param given the user's properties
     * @param transactional whether the relay publishes in the transactional mode; nothing changes if not
     * @return {@code p}
     */
    public static Map<String, Object> forPublishMode(
            Map<String, Object> p, Map<String, ?> given, boolean transactional) {
        if (transactional && !given.containsKey(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)) {
            p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, String.valueOf(MAX_IN_FLIGHT));
        }
        return p;
    }

    /**
     * Bounds the time a record may take from {@code send()} to the broker by the lease's safety
     * margin ({@link LeaseClock#margin(Duration)}): a record the relay sent while it still held the
     * lease either lands before the lease can expire in the database, or is failed by the producer.
     * Where not given, {@code delivery.timeout.ms} is half the margin and {@code request.timeout.ms}
     * what Kafka allows within it ({@code delivery.timeout.ms - linger.ms}, at most 10 s). {@link
     * #boundSendWait} then bounds {@code max.block.ms}.
     *
     * @param p the properties from {@link #validate}, changed in place
     * @param lease the relay's lease duration
     * @return {@code p}
     * @throws IllegalArgumentException naming the property when {@code delivery.timeout.ms} exceeds the
     *     margin or conflicts with {@code linger.ms + request.timeout.ms}
     */
    public static Map<String, Object> boundByLease(Map<String, Object> p, Duration lease) {
        long margin = LeaseClock.margin(lease).toMillis();
        long linger = integer(ProducerConfig.LINGER_MS_CONFIG, p.get(ProducerConfig.LINGER_MS_CONFIG));
        Object givenDelivery = p.get(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG);
        long delivery =
                givenDelivery != null ? integer(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, givenDelivery) : margin / 2;
        if (delivery > margin) {
            throw new IllegalArgumentException(
                    "producer property delivery.timeout.ms (" + delivery + ") may not exceed the lease's"
                            + " safety margin, a third of the lease duration ("
                            + Durations.format(Duration.ofMillis(margin)) + " of "
                            + Durations.format(lease) + "): a record could reach Kafka"
                            + " after another relay took the shard over; lower delivery.timeout.ms or lengthen the lease duration");
        }
        if (delivery <= linger) {
            throw new IllegalArgumentException("producer property linger.ms (" + linger + ") leaves no time within"
                    + " delivery.timeout.ms (" + delivery + ", bounded by a third of the lease "
                    + Durations.format(lease) + "); lower linger.ms");
        }
        Object givenRequest = p.get(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG);
        long request = givenRequest != null
                ? integer(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, givenRequest)
                : Math.min(10_000, delivery - linger);
        if (delivery < linger + request) {
            throw new IllegalArgumentException(
                    "producer property request.timeout.ms (" + request + ") plus linger.ms (" + linger
                            + ") exceeds delivery.timeout.ms (" + delivery
                            + (givenDelivery == null ? ", half of a third of the lease " + lease : "")
                            + "), which Kafka refuses; lower request.timeout.ms or lengthen the lease duration");
        }
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(delivery));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(request));
        return p;
    }

    /**
     * Bounds how long {@code send()} may wait (for buffer memory, or for a topic's metadata the
     * producer dropped) after the relay checked its lease: the record's delivery timeout starts only
     * once {@code send()} has returned, so in the default mode {@code max.block.ms +
     * delivery.timeout.ms} must fit in the lease's safety margin as well. Where not given, {@code
     * max.block.ms} is what the margin leaves after {@code delivery.timeout.ms} (at most 10 s, at least
     * 100 ms); a given one that does not fit is kept and logged at WARN, naming the risk. In the
     * transactional mode the broker fences a relay that lost its lease, and {@code max.block.ms} also
     * bounds {@code initTransactions()} and {@code commitTransaction()}: there it stays 10 s where not
     * given.
     *
     * @param p the properties from {@link #boundByLease}, changed in place
     * @param lease the relay's lease duration
     * @param transactional whether the relay publishes in the transactional mode
     * @return {@code p}
     */
    public static Map<String, Object> boundSendWait(Map<String, Object> p, Duration lease, boolean transactional) {
        Object givenBlock = p.get(ProducerConfig.MAX_BLOCK_MS_CONFIG);
        if (transactional) {
            p.putIfAbsent(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(DEFAULT_MAX_BLOCK_MS));
            return p;
        }
        long margin = LeaseClock.margin(lease).toMillis();
        long delivery =
                integer(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, p.get(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG));
        long block = givenBlock != null
                ? integer(ProducerConfig.MAX_BLOCK_MS_CONFIG, givenBlock)
                : Math.min(DEFAULT_MAX_BLOCK_MS, Math.max(margin - delivery, MIN_MAX_BLOCK_MS));
        if (block + delivery > margin) {
            LOG.warn(
                    "producer property max.block.ms ({}{}) plus delivery.timeout.ms ({}) exceeds the lease's safety"
                            + " margin, a third of the lease duration ({} of {}): send() can wait max.block.ms for"
                            + " buffer memory or a topic's metadata after the relay checked its lease, so a record"
                            + " could reach Kafka after another relay took the shard over and published newer"
                            + " messages of its key (a compacted topic would keep the older one); lower"
                            + " max.block.ms or delivery.timeout.ms to fit, or lengthen the lease duration",
                    block,
                    givenBlock == null ? ", the least the relay uses" : "",
                    delivery,
                    Durations.format(Duration.ofMillis(margin)),
                    Durations.format(lease));
        }
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(block));
        return p;
    }

    private static void requireOneOf(Map<String, Object> p, String name, String required, String why) {
        Object v = p.get(name);
        if (v == null) {
            return;
        }
        String s = text(v).trim().toLowerCase(Locale.ROOT);
        boolean ok = s.equals(required) || (required.equals("all") && s.equals("-1"));
        if (!ok) {
            throw new IllegalArgumentException("producer property " + name + " must be " + required + ", got '"
                    + text(v) + "': " + why + "; remove it or set it to " + required);
        }
    }

    private static void requireSerializer(Map<String, Object> p, String name) {
        Object v = p.get(name);
        if (v == null) {
            return;
        }
        String s = v instanceof Class<?> c ? c.getName() : text(v).trim();
        if (!s.equals(ByteArraySerializer.class.getName())) {
            throw new IllegalArgumentException("producer property " + name + " must not be set (got '" + s
                    + "'): the relay publishes the stored bytes with its own " + "ByteArraySerializer; remove it");
        }
    }

    private static int integer(String name, Object v) {
        if (v instanceof Number n) {
            return n.intValue();
        }
        try {
            return Integer.parseInt(text(v).trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "producer property " + name + " must be an integer, got '" + text(v) + "'", e);
        }
    }

    private static String text(Object v) {
        return v instanceof Class<?> c ? c.getName() : String.valueOf(v);
    }
}
