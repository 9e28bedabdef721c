package dev.outbox.examples.boot;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * The orders service and the payments listener of the Spring Boot example, in one application for
 * brevity (in production they are two services with two databases). Start it with a PostgreSQL and
 * a Kafka at hand: {@code SPRING_DATASOURCE_URL=jdbc:postgresql://localhost/shop
 * SPRING_KAFKA_BOOTSTRAP_SERVERS=localhost:9092 java -jar ...}.
 */
@SpringBootApplication
public class ShopApplication {
  public static void main(String[] args) {
    SpringApplication.run(ShopApplication.class, args);
  }
}
