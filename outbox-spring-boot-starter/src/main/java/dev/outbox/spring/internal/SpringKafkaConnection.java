package dev.outbox.spring.internal;

import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.beans.factory.config.ConfigurableBeanFactory;
import org.springframework.core.env.Environment;
import org.springframework.util.ClassUtils;

/**
 * What the embedded relay may take from Spring Boot's Kafka configuration ({@code spring.kafka.*}):
 * the brokers Spring's producer connects to, that producer's connection-security settings, and the
 * SSL bundle it uses. Read from Spring Boot's {@code KafkaProperties} bean, else (Spring Boot's Kafka
 * auto-configuration excluded) bound from the environment as that bean is; {@link #NONE} when {@code
 * spring-boot-kafka} is not on the class path.
 *
 * @param brokers the brokers of Spring's producer ({@code spring.kafka.producer.bootstrap-servers},
 *     else {@code spring.kafka.bootstrap-servers}, else Spring Boot's default)
 * @param security the producer's connection-security settings by their Kafka names, sorted: {@code
 *     security.protocol} and the {@code ssl.*} and {@code sasl.*} producer properties, as Spring
 *     Boot builds them from {@code spring.kafka.security.*}, {@code spring.kafka.ssl.*}, {@code
 *     spring.kafka.properties.*} and their {@code spring.kafka.producer.*} counterparts
 * @param sslBundle the SSL bundle setting of Spring's producer as {@code <property>=<name>} ({@code
 *     spring.kafka.ssl.bundle=kafka}), or null when it uses none
 */
public record SpringKafkaConnection(List<String> brokers, Map<String, String> security, String sslBundle) {

    /** Nothing to take: {@code spring-boot-kafka} is not on the class path. */
    public static final SpringKafkaConnection NONE = new SpringKafkaConnection(List.of(), Map.of(), null);

    static final String KAFKA_PROPERTIES = "org.springframework.boot.kafka.autoconfigure.KafkaProperties";

    public SpringKafkaConnection {
        brokers = List.copyOf(brokers);
        security = Collections.unmodifiableMap(new TreeMap<>(security));
    }

    /**
     * @param beans where Spring Boot's {@code KafkaProperties} bean is, if there is one
     * @param environment what {@code spring.kafka.*} is bound from when there is no such bean
     * @return the connection settings of Spring's Kafka producer, or {@link #NONE}
     */
    public static SpringKafkaConnection read(ListableBeanFactory beans, Environment environment) {
        ClassLoader loader = beans instanceof ConfigurableBeanFactory c ? c.getBeanClassLoader() : null;
        if (!ClassUtils.isPresent(KAFKA_PROPERTIES, loader)) {
            return NONE;
        }
        return SpringKafkaProperties.read(beans, environment);
    }

    /**
     * @param kafkaName a Kafka client property
     * @return the group of connection-security settings it belongs to ({@code security.protocol},
     *     {@code ssl.}, {@code sasl.}), or null when it is none of them
     */
    static String family(String kafkaName) {
        if (kafkaName.equals("security.protocol")) {
            return kafkaName;
        }
        if (kafkaName.startsWith("ssl.")) {
            return "ssl.";
        }
        if (kafkaName.startsWith("sasl.")) {
            return "sasl.";
        }
        return null;
    }
}
