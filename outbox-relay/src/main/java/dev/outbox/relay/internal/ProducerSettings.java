package dev.outbox.relay.internal;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** Validates the user's producer properties and adds the ones the relay enforces or defaults. */
public final class ProducerSettings {
  static final int MAX_IN_FLIGHT = 5;

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
        throw new IllegalArgumentException("producer property " + e.getKey() + " has a null value; give a value or remove it");
      }
      p.put(e.getKey(), e.getValue());
    }
    Object bootstrap = p.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG);
    if (bootstrap == null || text(bootstrap).isBlank()) {
      throw new IllegalArgumentException(
          "producer property bootstrap.servers is missing: add it to producerProperties, e.g. \"bootstrap.servers\" -> \"kafka:9092\"");
    }
    requireOneOf(p, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
        "the relay needs the idempotent producer to keep per-key order across retries");
    requireOneOf(p, ProducerConfig.ACKS_CONFIG, "all",
        "the relay deletes a row only after every in-sync replica has it; anything weaker can lose acknowledged messages");
    requireSerializer(p, ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG);
    requireSerializer(p, ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG);
    if (p.containsKey(ProducerConfig.TRANSACTIONAL_ID_CONFIG)) {
      throw new IllegalArgumentException(
          "producer property transactional.id is not supported (got '" + text(p.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG))
              + "'): the relay fences with its shard leases; remove it");
    }
    Object inFlight = p.get(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION);
    if (inFlight != null) {
      int n = integer(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, inFlight);
      if (n < 1 || n > MAX_IN_FLIGHT) {
        throw new IllegalArgumentException(
            "producer property max.in.flight.requests.per.connection must be between 1 and " + MAX_IN_FLIGHT + ", got " + n
                + ": above 5 the idempotent producer no longer keeps order; remove it or lower it");
      }
    }
    Object retries = p.get(ProducerConfig.RETRIES_CONFIG);
    if (retries != null && integer(ProducerConfig.RETRIES_CONFIG, retries) < 1) {
      throw new IllegalArgumentException(
          "producer property retries must be at least 1 for the idempotent producer, got " + text(retries) + ": remove it");
    }
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.putIfAbsent(ProducerConfig.CLIENT_ID_CONFIG, "outbox-relay-" + instanceId);
    // a batch is handed to the producer in one loop, so its records fill the producer's batches without
    // lingering; waiting would only delay the last partial batch of each partition (idle latency)
    p.putIfAbsent(ProducerConfig.LINGER_MS_CONFIG, "0");
    p.putIfAbsent(ProducerConfig.BATCH_SIZE_CONFIG, "65536");
    p.putIfAbsent(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
    if (!p.containsKey(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG)) {
      // Kafka refuses delivery.timeout.ms < linger.ms + request.timeout.ms
      p.putIfAbsent(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
      long linger = integer(ProducerConfig.LINGER_MS_CONFIG, p.get(ProducerConfig.LINGER_MS_CONFIG));
      long request = integer(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, p.get(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG));
      p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(30_000, linger + request)));
    }
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
      throw new IllegalArgumentException(
          "producer property " + name + " must be " + required + ", got '" + text(v) + "': " + why + "; remove it or set it to " + required);
    }
  }

  private static void requireSerializer(Map<String, Object> p, String name) {
    Object v = p.get(name);
    if (v == null) {
      return;
    }
    String s = v instanceof Class<?> c ? c.getName() : text(v).trim();
    if (!s.equals(ByteArraySerializer.class.getName())) {
      throw new IllegalArgumentException(
          "producer property " + name + " must not be set (got '" + s + "'): the relay publishes the stored bytes with its own "
              + "ByteArraySerializer; remove it");
    }
  }

  private static int integer(String name, Object v) {
    if (v instanceof Number n) {
      return n.intValue();
    }
    try {
      return Integer.parseInt(text(v).trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("producer property " + name + " must be an integer, got '" + text(v) + "'", e);
    }
  }

  private static String text(Object v) {
    return v instanceof Class<?> c ? c.getName() : String.valueOf(v);
  }
}
