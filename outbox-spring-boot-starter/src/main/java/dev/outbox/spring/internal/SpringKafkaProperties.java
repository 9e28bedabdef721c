package dev.outbox.spring.internal;

import java.lang.reflect.Field;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.beans.factory.NoUniqueBeanDefinitionException;
import org.springframework.beans.factory.config.AutowireCapableBeanFactory;
import org.springframework.beans.factory.config.DependencyDescriptor;
import org.springframework.beans.factory.config.NamedBeanHolder;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.kafka.autoconfigure.KafkaConnectionDetails;
import org.springframework.boot.kafka.autoconfigure.KafkaProperties;
import org.springframework.core.env.Environment;
import org.springframework.util.StringUtils;

/**
 * Reads {@link SpringKafkaConnection} from Spring Boot's {@link KafkaProperties} and the
 * application's {@link KafkaConnectionDetails} bean; loaded only when {@code spring-boot-kafka} is
 * on the class path (the starter's dependency on it is optional).
 */
final class SpringKafkaProperties {
    /**
     * The connection details Spring Boot builds from {@code spring.kafka.*} when the application has
     * none of its own: what it gives is read from {@code spring.kafka.*} directly, where an unset
     * {@code spring.kafka.bootstrap-servers} stays unset instead of becoming Spring Boot's default
     * {@code localhost:9092}.
     */
    static final String PROPERTIES_CONNECTION_DETAILS =
            "org.springframework.boot.kafka.autoconfigure.PropertiesKafkaConnectionDetails";

    private SpringKafkaProperties() {}

    /**
     * Spring's producer as Spring Boot's Kafka auto-configuration builds it: the producer properties
     * of {@code spring.kafka.*}, then the bootstrap servers, security protocol and SSL bundle of the
     * connection details' producer configuration.
     *
     * @throws IllegalStateException when {@code spring.kafka.*} or the connection details bean
     *     cannot be read, or there are several connection details beans and none is primary
     */
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
        NamedBeanHolder<KafkaConnectionDetails> named = connectionDetails(beans);
        if (named == null) {
            // as Spring Boot's own connection details give it to the producer, over spring.kafka.properties.*
            String protocol = kafka.getProducer().getSecurity().getProtocol();
            if (protocol == null) {
                protocol = kafka.getSecurity().getProtocol();
            }
            if (StringUtils.hasLength(protocol)) {
                security.put(SpringKafkaConnection.SECURITY_PROTOCOL, protocol);
            }
            return new SpringKafkaConnection(
                    brokers(producer.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)),
                    security,
                    sslBundle(kafka),
                    null,
                    false);
        }
        KafkaConnectionDetails details = named.getBeanInstance();
        String described = "KafkaConnectionDetails bean '" + named.getBeanName() + "' ("
                + details.getClass().getName() + ")";
        List<String> brokers;
        String protocol;
        boolean bundle;
        try {
            KafkaConnectionDetails.Configuration connection = details.getProducer();
            brokers = connection.getBootstrapServers();
            protocol = connection.getSecurityProtocol();
            bundle = connection.getSslBundle() != null;
        } catch (RuntimeException e) {
            throw new IllegalStateException(
                    described + ": the embedded relay could not read its producer connection (bootstrap servers,"
                            + " security protocol, SSL bundle), which Spring's Kafka producer uses: " + e.getMessage(),
                    e);
        }
        // as Spring Boot applies a protocol that has length, and a bundle that is there
        boolean ownProtocol = StringUtils.hasLength(protocol);
        if (ownProtocol) {
            security.put(SpringKafkaConnection.SECURITY_PROTOCOL, protocol);
        }
        return new SpringKafkaConnection(
                brokers == null ? List.of() : brokers(brokers),
                security,
                bundle ? described + " gives Spring's producer an SSL bundle" : null,
                described,
                ownProtocol);
    }

    /**
     * @return the application's {@link KafkaConnectionDetails} bean and its name, chosen as Spring
     *     injects it into Spring Boot's Kafka producer factory (the primary one of several, else the
     *     one of highest priority, else the one named {@code connectionDetails}, that factory's
     *     parameter), or null when there is none or it is Spring Boot's own built from {@code
     *     spring.kafka.*}; no other candidate bean is created
     */
    private static NamedBeanHolder<KafkaConnectionDetails> connectionDetails(ListableBeanFactory beans) {
        NamedBeanHolder<KafkaConnectionDetails> named;
        try {
            named = beans instanceof AutowireCapableBeanFactory factory ? injected(factory) : provided(beans);
        } catch (NoUniqueBeanDefinitionException e) {
            // the message says all Spring's exception does, and is what the start failure shows first
            throw new IllegalStateException(
                    e.getBeanNamesFound() != null
                            ? "the application has " + e.getNumberOfBeansFound() + " KafkaConnectionDetails beans "
                                    + e.getBeanNamesFound() + ", none @Primary and none named connectionDetails, so"
                                    + " the embedded relay cannot tell which brokers Spring's Kafka producer uses;"
                                    + " mark one @Primary"
                            : "the embedded relay cannot tell which KafkaConnectionDetails bean Spring's Kafka"
                                    + " producer uses: " + e.getMessage());
        }
        return named == null || named.getBeanInstance().getClass().getName().equals(PROPERTIES_CONNECTION_DETAILS)
                ? null
                : named;
    }

    private static NamedBeanHolder<KafkaConnectionDetails> injected(AutowireCapableBeanFactory factory) {
        Set<String> names = new LinkedHashSet<>();
        Object bean = factory.resolveDependency(
                new DependencyDescriptor(ProducerFactoryParameter.FIELD, false), null, names, null);
        return bean instanceof KafkaConnectionDetails details && names.size() == 1
                ? new NamedBeanHolder<>(names.iterator().next(), details)
                : null;
    }

    /** Where beans cannot be resolved as Spring injects them: the only one, or the primary one. */
    private static NamedBeanHolder<KafkaConnectionDetails> provided(ListableBeanFactory beans) {
        KafkaConnectionDetails details =
                beans.getBeanProvider(KafkaConnectionDetails.class).getIfAvailable();
        if (details == null) {
            return null;
        }
        String[] names = beans.getBeanNamesForType(KafkaConnectionDetails.class, true, false);
        return new NamedBeanHolder<>(names.length == 1 ? names[0] : "(primary)", details);
    }

    /** The injection point of Spring Boot's Kafka producer factory: a parameter named connectionDetails. */
    private static final class ProducerFactoryParameter {
        static final Field FIELD;

        static {
            try {
                FIELD = ProducerFactoryParameter.class.getDeclaredField("connectionDetails");
            } catch (NoSuchFieldException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        @SuppressWarnings("unused") // only its type and name are read, as an injection point
        private KafkaConnectionDetails connectionDetails;

        private ProducerFactoryParameter() {}
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
