package dev.outbox.core.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Set;
import org.junit.jupiter.api.Test;

class NearestNameTest {
    private static final Set<String> KNOWN = Set.of("linger.ms", "compression.type", "batch.size", "buffer.memory");

    @Test
    void aTypoIsMatchedToTheNameFewestEditsAway() {
        assertThat(NearestName.nearest("compresion.type", KNOWN)).isEqualTo("compression.type");
        assertThat(NearestName.nearest("LINGER.MS", KNOWN))
                .as("case is ignored")
                .isEqualTo("linger.ms");
        assertThat(NearestName.nearest("batch.sise", KNOWN)).isEqualTo("batch.size");
    }

    @Test
    void aTruncatedNameIsMatchedToTheShortestItBegins() {
        assertThat(NearestName.nearest("buffer", KNOWN)).isEqualTo("buffer.memory");
        assertThat(NearestName.nearest("li", KNOWN))
                .as("too short to be a truncation")
                .isNull();
    }

    @Test
    void aNameFarFromEveryKnownOneHasNoSuggestion() {
        assertThat(NearestName.nearest("max.request.size", KNOWN)).isNull();
        assertThat(NearestName.nearest("anything", Set.of())).isNull();
    }

    @Test
    void theDistanceCountsInsertionsDeletionsAndSubstitutions() {
        assertThat(NearestName.distance("kitten", "sitting")).isEqualTo(3);
        assertThat(NearestName.distance("", "abc")).isEqualTo(3);
        assertThat(NearestName.distance("same", "same")).isZero();
    }
}
