package org.cocoonjvm.worker.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StopMatcherTest {

    @Test
    void push_withoutStops_passesTextThrough() {
        StopMatcher matcher = new StopMatcher(List.of());

        assertThat(matcher.push("hello")).isEqualTo("hello");
        assertThat(matcher.push(" wor")).isEqualTo(" wor");
        assertThat(matcher.matched()).isFalse();
        assertThat(matcher.flush()).isEmpty();
    }

    @Test
    void push_textWithoutAnyStopPrefix_isEmittedAtOnce() {
        StopMatcher matcher = new StopMatcher(List.of("</s>"));

        assertThat(matcher.push("plain text")).isEqualTo("plain text");
        assertThat(matcher.matched()).isFalse();
    }

    @Test
    void push_stopInsideOnePush_emitsOnlyTheTextBeforeIt() {
        StopMatcher matcher = new StopMatcher(List.of("STOP"));

        assertThat(matcher.push("abc STOP def")).isEqualTo("abc ");
        assertThat(matcher.matched()).isTrue();
        assertThat(matcher.flush()).isEmpty();
    }

    @Test
    void push_stopSplitAcrossPushes_isNeverEmittedPartially() {
        StopMatcher matcher = new StopMatcher(List.of("</end>"));
        List<String> emitted = new ArrayList<>();

        for (String piece : List.of("hello <", "/e", "n", "d> trailing")) {
            emitted.add(matcher.push(piece));
            if (matcher.matched()) {
                break;
            }
        }

        assertThat(emitted).containsExactly("hello ", "", "", "");
        assertThat(matcher.matched()).isTrue();
        assertThat(String.join("", emitted)).isEqualTo("hello ").doesNotContain("<");
    }

    @Test
    void push_stopSplitCharByChar_emitsTextBeforeAndNothingOfTheStop() {
        StopMatcher matcher = new StopMatcher(List.of("###"));
        StringBuilder emitted = new StringBuilder();

        for (char c : "one two #x ## three ###four".toCharArray()) {
            emitted.append(matcher.push(String.valueOf(c)));
            if (matcher.matched()) {
                break;
            }
        }

        assertThat(matcher.matched()).isTrue();
        assertThat(emitted.toString()).isEqualTo("one two #x ## three ");
    }

    @Test
    void push_heldPrefixThatTurnsOutNotToBeAStop_isReleasedOnNextPush() {
        StopMatcher matcher = new StopMatcher(List.of("<stop>"));

        assertThat(matcher.push("a <st")).isEqualTo("a ");
        assertThat(matcher.push("ream")).isEqualTo("<stream");
        assertThat(matcher.matched()).isFalse();
    }

    @Test
    void push_overlappingRepeatedPrefix_holdsOnlyWhatCouldStillMatch() {
        StopMatcher matcher = new StopMatcher(List.of("abc"));

        assertThat(matcher.push("aab")).isEqualTo("a");
        assertThat(matcher.push("c")).isEmpty();
        assertThat(matcher.matched()).isTrue();
    }

    @Test
    void flush_returnsHeldBackTextOnce() {
        StopMatcher matcher = new StopMatcher(List.of("</end>"));

        assertThat(matcher.push("done </e")).isEqualTo("done ");
        assertThat(matcher.flush()).isEqualTo("</e");
        assertThat(matcher.flush()).isEmpty();
        assertThat(matcher.matched()).isFalse();
    }

    @Test
    void push_multipleStops_cutsAtTheEarliestWhateverTheListOrder() {
        assertThat(new StopMatcher(List.of("world", "lo")).push("hello world")).isEqualTo("hel");
        assertThat(new StopMatcher(List.of("lo", "world")).push("hello world")).isEqualTo("hel");
    }

    @Test
    void push_multipleStopsAcrossPushes_cutsAtTheEarliestOne() {
        StopMatcher matcher = new StopMatcher(List.of("xyz", "yq"));

        assertThat(matcher.push("axy")).isEqualTo("a");
        assertThat(matcher.push("q")).isEqualTo("x");
        assertThat(matcher.matched()).isTrue();
    }

    @Test
    void push_holdsTheLongestSuffixAmongSeveralStops() {
        StopMatcher matcher = new StopMatcher(List.of("ab", "bcd"));

        assertThat(matcher.push("zzbc")).isEqualTo("zz");
        assertThat(matcher.flush()).isEqualTo("bc");
    }
}
