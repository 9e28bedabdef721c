package dev.outbox.examples.boot;

import dev.outbox.http.server.ScopeResolver;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.annotation.Bean;

/**
 * The orders service and the payments listener of the Spring Boot example, in one application for
 * brevity (in production they are two services with two databases). Start it with a PostgreSQL and
 * a Kafka at hand: {@code SPRING_DATASOURCE_URL=jdbc:postgresql://localhost/shop
 * SPRING_KAFKA_BOOTSTRAP_SERVERS=localhost:9092 java -jar ...}. Its {@code application.properties}
 * leave the relay to its own process, as in production: run {@code outbox-relay-<version>-all.jar}
 * beside it (outbox-relay README), or add {@code --outbox.relay.enabled=true} to run one inside the
 * application. Without either, orders are stored and never paid.
 */
@SpringBootApplication
public class ShopApplication {
    public static void main(String[] args) {
        SpringApplication.run(ShopApplication.class, args);
    }

    /**
     * The example has no authentication, so every caller shares one key scope per route; its keys are
     * random UUIDs. A service with Spring Security keeps the default, which scopes keys per principal
     * and answers 401 to a request without one.
     */
    @Bean
    ScopeResolver idempotencyScope() {
        return ScopeResolver.principalOrAnonymous();
    }
}
