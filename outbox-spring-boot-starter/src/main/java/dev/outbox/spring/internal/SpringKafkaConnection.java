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
 * What the embedded relay may take from Spring Boot's Kafka configuration: the brokers Spring's
 * producer connects to, that producer's connection-security settings, and the SSL bundle it uses,
 * each as Spring Boot's Kafka auto-configuration gives them to that producer. Read from Spring
 * Boot's {@code KafkaProperties} bean ({@code spring.kafka.*}), else (Spring Boot's Kafka
 * auto-configuration excluded) bound from the environment as that bean is; then, when the
 * application has a {@code KafkaConnectionDetails} bean other than Spring Boot's own built from
 * {@code spring.kafka.*} (a service connection: {@code @ServiceConnection} with Testcontainers), its
 * producer configuration's bootstrap servers, security protocol and SSL bundle replace those of
 * {@code spring.kafka.*}, as they do for Spring's producer. {@link #NONE} when {@code
 * spring-boot-kafka} is not on the class path.
 *
 * @param brokers the brokers of Spring's producer: the connection details' producer bootstrap
 *     servers, else {@code spring.kafka.producer.bootstrap-servers}, else {@code
 *     spring.kafka.bootstrap-servers}, else Spring Boot's default
 * @param security the producer's connection-security settings by their Kafka names, sorted: {@code
 *     security.protocol} and the {@code ssl.*} and {@code sasl.*} producer properties, as Spring
 *     Boot builds them from {@code spring.kafka.security.*}, {@code spring.kafka.ssl.*}, {@code
 *     spring.kafka.properties.*} and their {@code spring.kafka.producer.*} counterparts, {@code
 *     security.protocol} replaced by the connection details' when they give one (Spring Boot's own
 *     give {@code spring.kafka.producer.security.protocol}, else {@code
 *     spring.kafka.security.protocol})
 * @param sslBundle the SSL bundle of Spring's producer as where it is set ({@code
 *     spring.kafka.ssl.bundle=kafka}, or the connection details bean that gives one), or null when
 *     it uses none
 * @param connectionDetails the {@code KafkaConnectionDetails} bean that gives Spring's producer its
 *     brokers, as {@code KafkaConnectionDetails bean '<name>' (<class>)}, or null when they come
 *     from {@code spring.kafka.*}
 * @param protocolFromConnectionDetails whether {@code security.protocol} in {@code security} is the
 *     connection details' rather than {@code spring.kafka.*}'s
 */
public record SpringKafkaConnection(
        List<String> brokers,
        Map<String, String> security,
        String sslBundle,
        String connectionDetails,
        boolean protocolFromConnectionDetails) {

    /** Nothing to take: {@code spring-boot-kafka} is not on the class path. */
    public static final SpringKafkaConnection NONE = new SpringKafkaConnection(List.of(), Map.of(), null, null, false);

    static final String SECURITY_PROTOCOL = "security.protocol";

    static final String KAFKA_PROPERTIES = "org.springframework.boot.kafka.autoconfigure.KafkaProperties";

    public SpringKafkaConnection {
        brokers = List.copyOf(brokers);
        security = Collections.unmodifiableMap(new TreeMap<>(security));
    }

    /**
     * @param kafkaName a connection-security setting of {@link #security()}
     * @return where Spring's producer got it: {@code the KafkaConnectionDetails bean ...}, or {@code
     *     spring.kafka.*}
     */
    public String origin(String kafkaName) {
        return protocolFromConnectionDetails && kafkaName.equals(SECURITY_PROTOCOL)
                ? "the " + connectionDetails
                : "spring.kafka.*";
    }

    /**
     * @return where Spring's producer got its connection settings: {@code spring.kafka.*}, and the
     *     connection details bean if any
     */
    public String origin() {
        return connectionDetails == null ? "spring.kafka.*" : "spring.kafka.* and the " + connectionDetails;
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
        if (kafkaName.equals(SECURITY_PROTOCOL)) {
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
