package dev.outbox.examples;

import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * The payments consumer on its own. Reads {@code SHOP_JDBC_URL}, {@code SHOP_DB_USER}, {@code
 * SHOP_DB_PASSWORD} and {@code SHOP_KAFKA_BOOTSTRAP}; expects the tables the orders service creates.
 */
public final class PaymentsConsumerMain {
    private PaymentsConsumerMain() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        String bootstrap = Env.require(env, Env.KAFKA_BOOTSTRAP, "kafka:9092");
        var ds = Env.dataSource(env, 8);
        Shop.create(ds);
        var consumer = PaymentsConsumer.start(ds, bootstrap, new CardProcessor());
        System.out.println("payments consumer started on " + bootstrap);
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            consumer.close();
            ds.close();
            stop.countDown();
        }));
        stop.await();
    }
}
