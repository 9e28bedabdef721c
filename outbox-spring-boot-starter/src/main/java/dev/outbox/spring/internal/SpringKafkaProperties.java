package dev.outbox.spring.internal;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.kafka.autoconfigure.KafkaProperties;
import org.springframework.core.env.Environment;
import org.springframework.util.StringUtils;

/**
 * Reads {@link SpringKafkaConnection} from Spring Boot's {@link KafkaProperties}; loaded only when
 * {@code spring-boot-kafka} is on the class path (the starter's dependency on it is optional).
 */
final class SpringKafkaProperties {
    private SpringKafkaProperties() {}

    static SpringKafkaConnection read(ListableBeanFactory beans, Environment environment) {
        KafkaProperties kafka = beans.getBeanProvider(KafkaProperties.class)
                .getIfAvailable(() -> Binder.get(environment).bindOrCreate("spring.kafka", KafkaProperties.class));
        Map<String, Object> producer;
        try {
            producer = kafka.buildProducerProperties();
        } catch (RuntimeException e) {
            throw new IllegalStateException(
                    "spring.kafka.*: the embedded relay could not read Spring Boot's Kafka producer settings,"
                            + " whose connection security it takes: " + e.getMessage(),
                    e);
        }
        Map<String, String> security = new TreeMap<>();
        producer.forEach((name, value) -> {
            if (value != null
                    && SpringKafkaConnection.family(name) != null
                    && ProducerConfig.configNames().contains(name)) {
                security.put(name, String.valueOf(value));
            }
        });
        return new SpringKafkaConnection(
                brokers(producer.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)), security, sslBundle(kafka));
    }

    private static List<String> brokers(Object servers) {
        if (servers instanceof Collection<?> list) {
            return list.stream().map(String::valueOf).toList();
        }
        return servers == null ? List.of() : List.of(String.valueOf(servers).split(","));
    }

    /** As Spring Boot picks it: the producer's own bundle, else the common one. */
    private static String sslBundle(KafkaProperties kafka) {
        String producer = kafka.getProducer().getSsl().getBundle();
        if (StringUtils.hasText(producer)) {
            return "spring.kafka.producer.ssl.bundle=" + producer;
        }
        String common = kafka.getSsl().getBundle();
        return StringUtils.hasText(common) ? "spring.kafka.ssl.bundle=" + common : null;
    }
}
