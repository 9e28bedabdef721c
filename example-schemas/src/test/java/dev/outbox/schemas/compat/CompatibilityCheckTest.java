package dev.outbox.schemas.compat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.schemas.AvroCodec;
import dev.outbox.schemas.orders.OrderPlaced;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CompatibilityCheckTest {

    private static final Path FIXTURES = Path.of("src/test/resources/compat-fixtures");
    private static final Path REPO_CURRENT = Path.of("src/main/avro");
    private static final Path REPO_HISTORY = Path.of("src/main/avro-history");

    private static List<Problem> check(String fixture) {
        return CompatibilityCheck.check(
                FIXTURES.resolve(fixture).resolve("current"),
                FIXTURES.resolve(fixture).resolve("history"));
    }

    @Test
    void theRepositorysOwnSchemasPass() {
        assertThat(CompatibilityCheck.check(REPO_CURRENT, REPO_HISTORY)).isEmpty();
        assertThat(REPO_HISTORY.resolve("dev.outbox.schemas.orders.OrderPlaced/v1.avsc"))
                .exists();
    }

    @Test
    void acceptsACompatibleEvolution() {
        assertThat(check("compatible")).isEmpty();
    }

    @Test
    void rejectsANewFieldWithoutDefault() {
        List<Problem> problems = check("missing-default");
        assertThat(problems).singleElement().satisfies(problem -> {
            assertThat(problem.kind()).isEqualTo(Problem.Kind.INCOMPATIBLE);
            assertThat(problem.file()).hasFileName("Widget.avsc");
            assertThat(problem.olderVersion()).hasFileName("v1.avsc");
            assertThat(problem.schemaName()).isEqualTo("dev.outbox.fixtures.Widget");
            assertThat(problem.incompatibility()).isEqualTo("READER_FIELD_MISSING_DEFAULT_VALUE");
            assertThat(problem.location()).isEqualTo("/fields/2 (Widget.color)");
            assertThat(problem.message())
                    .contains(
                            "missing-default/current/Widget.avsc",
                            "dev.outbox.fixtures.Widget",
                            "dev.outbox.fixtures.Widget/v1.avsc",
                            "READER_FIELD_MISSING_DEFAULT_VALUE",
                            "/fields/2",
                            "add a default to the new field or keep the old field");
        });
    }

    @Test
    void rejectsAFieldTypeChangeFromIntToString() {
        List<Problem> problems = check("type-change");
        assertThat(problems).singleElement().satisfies(problem -> {
            assertThat(problem.kind()).isEqualTo(Problem.Kind.INCOMPATIBLE);
            assertThat(problem.incompatibility()).isEqualTo("TYPE_MISMATCH");
            assertThat(problem.location()).isEqualTo("/fields/1/type (Widget.quantity)");
            assertThat(problem.message()).contains("TYPE_MISMATCH", "keep the old field");
        });
    }

    @Test
    void reportsUnparseableFilesByName() {
        List<Problem> problems = check("unparseable");
        assertThat(problems).extracting(Problem::kind).containsOnly(Problem.Kind.UNPARSEABLE);
        assertThat(problems)
                .extracting(problem -> problem.file().getFileName().toString())
                .containsExactlyInAnyOrder("Broken.avsc", "v1.avsc");
        assertThat(problems).allSatisfy(problem -> assertThat(problem.message()).contains("cannot parse Avro schema"));
        assertThat(problems)
                .anySatisfy(problem -> assertThat(problem.message())
                        .contains("unparseable/current/Broken.avsc")
                        .contains("count"));
    }

    @Test
    void reportsMisfiledHistory() {
        List<Problem> problems = check("misfiled");
        assertThat(problems)
                .extracting(Problem::kind)
                .containsExactlyInAnyOrder(
                        Problem.Kind.BAD_HISTORY_LAYOUT, Problem.Kind.NO_CURRENT_SCHEMA, Problem.Kind.NAME_MISMATCH);
        assertThat(problems)
                .filteredOn(problem -> problem.kind() == Problem.Kind.NAME_MISMATCH)
                .singleElement()
                .satisfies(problem -> {
                    assertThat(problem.file()).hasFileName("v2.avsc");
                    assertThat(problem.message()).contains("dev.outbox.fixtures.Gadget", "dev.outbox.fixtures.Widget");
                });
    }

    @Test
    void commandLineFailsWithOneLinePerProblem() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Path dir = FIXTURES.resolve("type-change");
        int status = CompatibilityCheck.run(
                new String[] {
                    dir.resolve("current").toString(), dir.resolve("history").toString()
                },
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));

        assertThat(status).isEqualTo(1);
        String text = err.toString(StandardCharsets.UTF_8);
        assertThat(text).contains("FAILED with 1 problem(s)", "[INCOMPATIBLE]", "TYPE_MISMATCH", "Widget.avsc", "Fix:");
        assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
    }

    @Test
    void commandLinePassesAndWritesTheIndex(@TempDir Path temp) throws Exception {
        Path index = temp.resolve("META-INF/outbox/avro-schemas.index");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = CompatibilityCheck.run(
                new String[] {REPO_CURRENT.toString(), REPO_HISTORY.toString(), "--index", index.toString()},
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));

        assertThat(status).as(err.toString(StandardCharsets.UTF_8)).isZero();
        assertThat(Files.readAllLines(index))
                .contains(
                        AvroCodec.CURRENT_RESOURCE_ROOT + "orders/OrderPlaced.avsc",
                        AvroCodec.CURRENT_RESOURCE_ROOT + "payments/PaymentCaptured.avsc",
                        AvroCodec.HISTORY_RESOURCE_ROOT + "dev.outbox.schemas.orders.OrderPlaced/v1.avsc");
    }

    @Test
    void commandLineRejectsBadArguments() {
        PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertThat(CompatibilityCheck.run(new String[] {"src/main/avro"}, sink, sink))
                .isEqualTo(2);
        assertThat(CompatibilityCheck.run(new String[] {"no/such/dir", "src/main/avro-history"}, sink, sink))
                .isEqualTo(2);
        assertThat(CompatibilityCheck.run(new String[] {"a", "b", "--bogus"}, sink, sink))
                .isEqualTo(2);
        assertThatThrownBy(() -> CompatibilityCheck.check(Path.of("no/such/dir"), REPO_HISTORY))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void describesNestedLocationsAsFieldPaths() {
        assertThat(CompatibilityCheck.fieldPath(OrderPlaced.getClassSchema(), "/fields/5/type/items/fields/1/type"))
                .isEqualTo("OrderPlaced.lines[].quantity");
        assertThat(CompatibilityCheck.fieldPath(OrderPlaced.getClassSchema(), "/fields/6"))
                .isEqualTo("OrderPlaced.channel");
        assertThat(CompatibilityCheck.fieldPath(OrderPlaced.getClassSchema(), "/name"))
                .isNull();
        assertThat(CompatibilityCheck.fieldPath(OrderPlaced.getClassSchema(), "/fields/99"))
                .isNull();
    }
}
