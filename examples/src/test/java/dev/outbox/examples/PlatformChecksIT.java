package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import dev.outbox.archunit.IdempotencyRules;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.IdempotentHttpClient;
import dev.outbox.http.server.gate.Endpoint;
import dev.outbox.http.server.gate.GateReport;
import dev.outbox.relay.admin.Doctor;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The examples pass the platform checks they ask of their users: the orders service passes its own
 * start-up gate (its one POST is covered, nothing exempted), the example code passes the
 * build-time rules, and after real orders (keys with stored responses, outbox rows) the doctor finds
 * no failure mode, including the payments consumer's retention against the orders topic's (G4, G5).
 * No relay or consumer runs here: they would publish to and read the shared broker's orders topic
 * under the demo's consumer group.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class PlatformChecksIT {

    @Test
    void theOrdersServicePassesItsGate_andTheDeploymentPassesTheDoctor(TestDatabase db, TestKafka kafka)
            throws Exception {
        Shop.create(db.dataSource());
        kafka.createTopic(OrdersService.TOPIC, 8, OrdersService.TOPIC_CONFIGS);
        try (OrdersService orders = OrdersService.start(db.dataSource(), 0, 0, Duration.ofSeconds(1))) {
            GateReport gate = orders.gateReport();
            assertThat(gate.passed()).isTrue();
            assertThat(gate.covered()).extracting(Endpoint::route).containsExactly("POST /orders");
            assertThat(gate.exempted()).isEmpty();

            IdempotentHttpClient client = IdempotentHttpClient.builder().build();
            for (int i = 0; i < 3; i++) {
                HttpRequest request = HttpRequest.newBuilder(orders.baseUri().resolve("/orders"))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "clientRef=op-" + i + "&customerId=c-1&amountCents=1250&sku=sku-1"))
                        .build();
                CallResult<String> first = client.send(request, HttpResponse.BodyHandlers.ofString(), "op-" + i);
                CallResult<String> again = client.send(request, HttpResponse.BodyHandlers.ofString(), "op-" + i);
                assertThat(first.response().statusCode()).isEqualTo(201);
                assertThat(again.response().headers().firstValue("Idempotent-Replayed"))
                        .contains("true");
            }
        }

        Doctor.Report report = Doctor.builder()
                .dataSource(db.dataSource())
                .consumer(PaymentsConsumer.NAME, OrdersService.TOPIC)
                .kafkaProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                .build()
                .run();

        assertThat(report.failed()).as("%s", report).isFalse();
        assertThat(report.check("topic-retention").verdict()).isEqualTo(Doctor.Verdict.PASS);
        assertThat(report.check("stored-responses").verdict()).isEqualTo(Doctor.Verdict.PASS);
        assertThat(report.check("outbox-unpublished").evidence())
                .singleElement()
                .asString()
                .startsWith("3 unpublished message(s)");
    }

    @Test
    void theExampleCodePassesTheBuildTimeRules() {
        IdempotencyRules.all()
                .check(new ClassFileImporter()
                        .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                        .importPackages("dev.outbox.examples"));
    }
}
