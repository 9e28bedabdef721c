package dev.outbox.testkit;

import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import kafka.server.BrokerServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.network.ListenerName;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.apache.kafka.common.utils.Exit;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.kafka.KafkaContainer;

/**
 * A real Kafka broker: the one named by {@code outbox.test.kafka.bootstrap} ({@code
 * OUTBOX_TEST_KAFKA_BOOTSTRAP}); else, with {@code outbox.test.kafka=testcontainers}, a
 * Testcontainers broker; else a single-node KRaft broker started in this JVM from Apache Kafka's
 * own test kit. The shared instance lives as long as the JVM.
 */
public final class TestKafka implements AutoCloseable {

    private static TestKafka shared;

    private final String bootstrapServers;
    private final String origin;
    private final AutoCloseable owned;
    private final KafkaClusterTestKit kit;
    // started with a SASL/SCRAM listener (startInJvmWithScramListener)
    private volatile boolean scramListener;

    private TestKafka(String bootstrapServers, String origin, AutoCloseable owned) {
        this.bootstrapServers = bootstrapServers;
        this.origin = origin;
        this.owned = owned;
        this.kit = owned instanceof KafkaClusterTestKit k ? k : null;
    }

    /**
     * @return the broker shared by every test of this JVM, started on first use
     * @throws ServiceUnavailableException when no broker could be reached or started
     */
    public static synchronized TestKafka shared() {
        if (shared == null) {
            shared = locate();
            TestKafka s = shared;
            Runtime.getRuntime()
                    .addShutdownHook(new Thread(
                            () -> {
                                // The JVM is exiting anyway: a broker that trips over its own shutdown (a log directory
                                // already gone) must not halt the JVM with status 1 and turn a passing test run into a
                                // failure.
                                Exit.setHaltProcedure((code, message) ->
                                        System.err.println("[testkit] broker asked to halt with status " + code
                                                + " while stopping: " + message));
                                s.close();
                            },
                            "testkit-kafka-stop"));
        }
        return shared;
    }

    /**
     * Starts a broker of its own in this JVM, for tests that stop it.
     *
     * @return the broker; close it when done
     */
    public static TestKafka startInJvm() {
        return startInJvm(Map.of());
    }

    /**
     * Starts a broker of its own in this JVM with some broker settings changed, for tests that need a
     * broker unlike the shared one (for example {@code auto.create.topics.enable=false}).
     *
     * @param brokerProperties broker settings that override the kit's defaults
     * @return the broker; close it when done
     * @throws NullPointerException when {@code brokerProperties} is null
     */
    public static TestKafka startInJvm(Map<String, String> brokerProperties) {
        Objects.requireNonNull(brokerProperties, "brokerProperties may not be null");
        return startCluster(1, brokerProperties);
    }

    /** The listener of {@link #startInJvmWithScramListener} where clients sign in. */
    private static final String SCRAM_LISTENER = "SCRAM";

    /**
     * Starts a broker of its own in this JVM with a second listener where clients sign in with
     * SASL/SCRAM-SHA-256 ({@link #scramBootstrapServers()}), for tests of a client whose credential is
     * missing, revoked or restored ({@link #createScramCredential}, {@link #deleteScramCredential}).
     * Its own listener ({@link #bootstrapServers()}) still takes clients without authentication.
     *
     * @param brokerProperties broker settings that override the kit's defaults (for example {@code
     *     connections.max.reauth.ms}, so that a deleted credential is refused on connections that exist)
     * @return the broker; close it when done
     */
    public static TestKafka startInJvmWithScramListener(Map<String, String> brokerProperties) {
        Map<String, String> properties = new HashMap<>(brokerProperties);
        properties.put(
                "listeners", "EXTERNAL://localhost:0,CONTROLLER://localhost:0," + SCRAM_LISTENER + "://localhost:0");
        properties.put(
                "listener.security.protocol.map",
                "EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT," + SCRAM_LISTENER + ":SASL_PLAINTEXT");
        properties.put("sasl.enabled.mechanisms", "SCRAM-SHA-256");
        properties.put(
                "listener.name." + SCRAM_LISTENER.toLowerCase(Locale.ROOT) + ".scram-sha-256.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;");
        TestKafka k = startInJvm(properties);
        k.scramListener = true;
        return k;
    }

    /**
     * @return the address of the listener where clients sign in with SASL/SCRAM-SHA-256
     * @throws IllegalStateException unless started by {@link #startInJvmWithScramListener}
     */
    public String scramBootstrapServers() {
        requireKit("scramBootstrapServers");
        if (!scramListener) {
            throw new IllegalStateException(
                    "this broker has no SCRAM listener: start it with startInJvmWithScramListener");
        }
        BrokerServer broker = kit.brokers().values().iterator().next();
        return "localhost:" + broker.boundPort(ListenerName.normalised(SCRAM_LISTENER));
    }

    /**
     * @return client properties that sign in as {@code user} with {@code password} on {@link
     *     #scramBootstrapServers()}
     */
    public Map<String, Object> scramClientProperties(String user, String password) {
        Map<String, Object> p = new HashMap<>();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, scramBootstrapServers());
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "SCRAM-SHA-256");
        p.put(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"" + user + "\" password=\""
                        + password + "\";");
        return p;
    }

    /** Creates or replaces {@code user}'s SCRAM-SHA-256 credential. */
    public void createScramCredential(String user, String password) throws Exception {
        try (Admin admin = admin()) {
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                            user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), password)))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
    }

    /** Deletes {@code user}'s SCRAM-SHA-256 credential: its connections fail their next sign-in. */
    public void deleteScramCredential(String user) throws Exception {
        try (Admin admin = admin()) {
            admin.alterUserScramCredentials(
                            List.of(new UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
    }

    /**
     * Starts a KRaft cluster of its own in this JVM with {@code brokers} brokers (the first one also the
     * controller), for tests that stop single brokers ({@link #stopBroker(int)}).
     *
     * @param brokers how many brokers, at least 1
     * @param brokerProperties broker settings that override the kit's defaults
     * @return the cluster; close it when done
     * @throws IllegalArgumentException when {@code brokers} is below 1
     */
    public static TestKafka startCluster(int brokers, Map<String, String> brokerProperties) {
        Objects.requireNonNull(brokerProperties, "brokerProperties may not be null");
        if (brokers < 1) {
            throw new IllegalArgumentException("brokers must be at least 1, not " + brokers);
        }
        try {
            return startTestKit(brokerProperties, brokers);
        } catch (Exception e) {
            throw new ServiceUnavailableException(
                    "Kafka", List.of("in-JVM KRaft broker: " + e), "see the test output for the broker's own error.");
        }
    }

    private static TestKafka locate() {
        List<String> attempts = new ArrayList<>();
        var configured = Settings.get("outbox.test.kafka.bootstrap");
        if (configured.isPresent()) {
            TestKafka k = new TestKafka(configured.get(), "configured bootstrap " + configured.get(), null);
            try {
                k.awaitReady(Duration.ofSeconds(15));
                return k;
            } catch (RuntimeException e) {
                attempts.add("configured bootstrap " + configured.get() + " (outbox.test.kafka.bootstrap): "
                        + e.getMessage());
                throw new ServiceUnavailableException(
                        "Kafka", attempts, "check that address, or unset it to start a broker in the JVM.");
            }
        }
        if (Settings.get("outbox.test.kafka").orElse("").equals("testcontainers")) {
            try {
                if (!DockerClientFactory.instance().isDockerAvailable()) {
                    throw new IllegalStateException("no Docker engine answers");
                }
                var c = new KafkaContainer("apache/kafka:4.1.1");
                c.start();
                return new TestKafka(c.getBootstrapServers(), "Testcontainers", c::stop);
            } catch (RuntimeException e) {
                attempts.add("Testcontainers (outbox.test.kafka=testcontainers): " + e.getMessage());
            }
        }
        try {
            return startTestKit(Map.of(), 1);
        } catch (Exception e) {
            attempts.add("in-JVM KRaft broker (kafka-test-common-runtime): " + e);
            throw new ServiceUnavailableException(
                    "Kafka",
                    attempts,
                    "set OUTBOX_TEST_KAFKA_BOOTSTRAP to a running broker, or check the broker's log above.");
        }
    }

    private static TestKafka startTestKit(Map<String, String> overrides, int brokers) throws Exception {
        // a directory of our own: Kafka's default temporary directory is deleted by a shutdown hook of
        // its own, concurrently with the broker still writing to it; the kit deletes this one on close
        TestKitNodes nodes = new TestKitNodes.Builder()
                .setCombined(true)
                .setNumBrokerNodes(brokers)
                .setNumControllerNodes(1)
                .setBaseDirectory(Files.createTempDirectory("outbox-kafka-"))
                .build();
        KafkaClusterTestKit.Builder builder = new KafkaClusterTestKit.Builder(nodes)
                .setConfigProp("offsets.topic.replication.factor", "1")
                .setConfigProp("offsets.topic.num.partitions", "4")
                .setConfigProp("transaction.state.log.replication.factor", "1")
                .setConfigProp("transaction.state.log.min.isr", "1")
                .setConfigProp("transaction.state.log.num.partitions", "4")
                .setConfigProp("share.coordinator.state.topic.replication.factor", "1")
                .setConfigProp("share.coordinator.state.topic.min.isr", "1")
                .setConfigProp("group.initial.rebalance.delay.ms", "0")
                .setConfigProp("auto.create.topics.enable", "true")
                .setConfigProp("num.partitions", "4")
                .setConfigProp("message.max.bytes", String.valueOf(8 * 1024 * 1024));
        overrides.forEach(builder::setConfigProp);
        KafkaClusterTestKit kit = builder.build();
        kit.format();
        kit.startup();
        kit.waitForReadyBrokers();
        TestKafka k = new TestKafka(kit.bootstrapServers(), "in-JVM KRaft broker", kit);
        k.awaitReady(Duration.ofSeconds(60));
        return k;
    }

    /**
     * Stops the broker of a kit started by {@link #startInJvm()}, keeping its controller, log
     * directories and port, for outage tests: clients see connections refused until {@link
     * #startBroker()}. Never call it on {@link #shared()}: other tests use that broker.
     *
     * @throws IllegalStateException when this broker was not started in this JVM
     */
    public synchronized void stopBroker() {
        requireKit("stopBroker");
        kit.brokers().values().forEach(b -> b.shutdown());
    }

    /**
     * Starts the broker stopped by {@link #stopBroker()} again on the same port and waits until it
     * serves requests.
     *
     * @throws IllegalStateException when this broker was not started in this JVM or did not come back
     */
    public synchronized void startBroker() {
        requireKit("startBroker");
        kit.brokers().values().forEach(b -> b.startup());
        awaitBrokers();
    }

    /** @return the ids of the brokers of a cluster started in this JVM */
    public Set<Integer> brokerIds() {
        requireKit("brokerIds");
        return Set.copyOf(kit.brokers().keySet());
    }

    /**
     * Stops one broker of a cluster from {@link #startCluster}, keeping its log directories and port:
     * the partitions it leads (with replication factor 1) have no leader until {@link #startBroker(int)}.
     *
     * @param id the broker's id, one of {@link #brokerIds()}
     * @throws IllegalArgumentException when there is no such broker
     */
    public synchronized void stopBroker(int id) {
        requireKit("stopBroker");
        broker(id).shutdown();
    }

    /**
     * Starts a broker stopped by {@link #stopBroker(int)} again and waits until it serves requests.
     *
     * @param id the broker's id
     * @throws IllegalStateException when it did not come back
     */
    public synchronized void startBroker(int id) {
        requireKit("startBroker");
        broker(id).startup();
        awaitBrokers();
    }

    private kafka.server.BrokerServer broker(int id) {
        kafka.server.BrokerServer b = kit.brokers().get(id);
        if (b == null) {
            throw new IllegalArgumentException("no broker " + id + " in " + this + "; brokers are "
                    + kit.brokers().keySet());
        }
        return b;
    }

    private void awaitBrokers() {
        try {
            kit.waitForReadyBrokers();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the broker to restart", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("broker did not restart: " + e.getCause(), e.getCause());
        }
        awaitReady(Duration.ofSeconds(60));
    }

    private void requireKit(String what) {
        if (kit == null || this == shared) {
            throw new IllegalStateException(
                    what + " works only on a broker of its own from TestKafka.startInJvm(), not on " + this);
        }
    }

    /** @return the bootstrap servers */
    public String bootstrapServers() {
        return bootstrapServers;
    }

    /** @return where the broker came from */
    public String origin() {
        return origin;
    }

    /** @return a new admin client; the caller closes it */
    public Admin admin() {
        return Admin.create(Map.of(
                AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers,
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15_000));
    }

    /**
     * A topic name for one test run: the shared broker lives as long as the JVM (or longer, when one
     * is named by {@code outbox.test.kafka.bootstrap}), so a fixed name would let a test read records
     * an earlier test or run left behind.
     *
     * @param prefix what the topic is for
     * @return {@code prefix} followed by a dash and 8 random hex digits
     */
    public static String uniqueTopic(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    /**
     * Creates a topic unless it exists.
     *
     * @param name topic name
     * @param partitions partition count
     */
    public void createTopic(String name, int partitions) {
        createTopic(name, partitions, Map.of());
    }

    /**
     * Creates a topic with settings of its own unless it exists.
     *
     * @param name topic name
     * @param partitions partition count
     * @param configs topic settings such as {@code retention.ms}; the broker's defaults for the others
     */
    public void createTopic(String name, int partitions, Map<String, String> configs) {
        try (Admin admin = admin()) {
            try {
                admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs)))
                        .all()
                        .get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw new IllegalStateException(
                            "could not create topic " + name + ": " + e.getCause(), e.getCause());
                }
            }
            awaitLeaders(admin, name, partitions);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topic " + name, e);
        } catch (TimeoutException e) {
            throw new IllegalStateException("topic " + name + " was not created within 30 s", e);
        }
    }

    /**
     * Waits until every partition's leader answers. The controller acknowledges a new topic before
     * the broker has loaded its partitions; a producer that sends in that window gets
     * NOT_LEADER_OR_FOLLOWER, and the in-JVM broker has been seen to answer a retried first batch with
     * OUT_OF_ORDER_SEQUENCE_NUMBER for ever after, which would make tests lose records.
     */
    private static void awaitLeaders(Admin admin, String name, int partitions) throws InterruptedException {
        Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            specs.put(new TopicPartition(name, p), OffsetSpec.latest());
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                admin.listOffsets(specs).all().get(10, TimeUnit.SECONDS);
                return;
            } catch (ExecutionException | TimeoutException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(
                            "the partitions of topic " + name + " have no leader after 30 s: " + e, e);
                }
                Thread.sleep(50);
            }
        }
    }

    /** @return producer properties with byte-array serializers, idempotence on and acks=all */
    public Properties producerProperties() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        return p;
    }

    /**
     * @param groupId the consumer group
     * @return consumer properties with byte-array deserializers, reading from the earliest offset,
     *     without auto commit
     */
    public Properties consumerProperties(String groupId) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return p;
    }

    private void awaitReady(Duration timeout) {
        try (Admin admin = admin()) {
            Set<String> ignored = admin.listTopics().names().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new IllegalStateException(
                    "broker at " + bootstrapServers + " did not answer within " + timeout.toSeconds() + " s: " + e, e);
        }
    }

    /** Stops the broker if this kit started it. */
    @Override
    public synchronized void close() {
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                System.err.println("[testkit] broker did not stop cleanly: " + e);
            }
        }
    }

    @Override
    public String toString() {
        return origin + " at " + bootstrapServers;
    }
}
