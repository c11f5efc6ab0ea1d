package org.cocoonjvm.worker.model;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import jinjava.javax.el.CompositeELResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.worker.engine.PromptRejected;

/**
 * A model's Jinja chat template, rendered as transformers' {@code apply_chat_template} does:
 * {@code trim_blocks} and {@code lstrip_blocks} on, with {@code messages},
 * {@code add_generation_prompt}, {@code bos_token}, {@code eos_token} and {@code raise_exception}.
 * What the messages say is never read as template code. The {@code developer} role is given to
 * the template as {@code system}: OpenAI's API treats them as one slot, and templates written
 * before it existed would drop or refuse it. Thread-safe.
 */
public final class ChatTemplate {
    private final String template;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    public ChatTemplate(String template, String bosToken, String eosToken) {
        this.template = toJinjava(template);
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        // Jinjava's newer behaviours are closer to Python's Jinja2 ({{- -}} trimming, natural operator
        // precedence, iterating a dict gives its keys); keep accepting {{'a'}} without inner spaces.
        LegacyOverrides python = LegacyOverrides.Builder.from(LegacyOverrides.ALL)
                .withWhitespaceRequiredWithinTokens(false)
                .withUseSnakeCasePropertyNaming(false)
                .build();
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStringMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        // Nested interpretation off: Jinjava would otherwise render what an expression outputs as a
        // template again, so a message saying {{ 7*7 }} reached the model as 49, and one with nested
        // loops ran them. Messages are data, as in Python's Jinja2.
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true)
                .withNestedInterpretationEnabled(false)
                .withLegacyOverrides(python).withElResolver(resolver).build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                ChatTemplate.class, "strftimeNow", String.class));
    }

    private static final Pattern REVERSE_SLICE = Pattern.compile("\\[\\s*:\\s*:\\s*-1\\s*]");
    private static final Pattern NAMED_ARG_WITH_FILTER =
            Pattern.compile("([(,]\\s*)(\\w+)\\s*=(?!=)\\s*([^,()'\"=]*\\|[^,()'\"=]*?)(\\s*[,)])");

    /**
     * Python Jinja2 syntax that Jinjava parses differently, rewritten to what it parses the same way:
     * {@code seq[::-1]} becomes {@code seq|reverse}, and a keyword argument whose value uses a filter
     * ({@code namespace(i=messages|length - 1)}) gets parentheses, since Jinjava would otherwise bind
     * {@code - 1} to the whole argument.
     */
    static String toJinjava(String template) {
        String t = REVERSE_SLICE.matcher(template).replaceAll("|reverse");
        return NAMED_ARG_WITH_FILTER.matcher(t).replaceAll(m -> Matcher.quoteReplacement(
                m.group(1) + m.group(2) + "=(" + m.group(3).strip() + ")" + m.group(4)));
    }

    public String template() {
        return template;
    }

    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (ChatMessage m : messages) {
            Map<String, Object> msg = new LinkedHashMap<>();
            msg.put("role", m.getRole().equals("developer") ? "system" : m.getRole());
            msg.put("content", m.getContent());
            list.add(msg);
        }
        return renderMaps(list, addGenerationPrompt);
    }

    /**
     * Renders plain maps (role, content, and whatever else a template reads).
     *
     * @throws PromptRejected when the template raises an exception or fails on these messages
     */
    public String renderMaps(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        Map<String, Object> context = new HashMap<>();
        context.put("messages", messages);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken);
        context.put("eos_token", eosToken);
        RenderResult result = jinjava.renderForResult(template, context);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                for (Throwable c = e.getException(); c != null; c = c.getCause()) {
                    if (c instanceof RaisedException raised) {
                        throw new PromptRejected("The model's chat template refused these messages: "
                                + cut(raised.getMessage()), raised, true);
                    }
                }
                throw new PromptRejected("The model's chat template failed on these messages: " + cut(e.getMessage())
                        + (e.getLineno() > 0 ? " (line " + e.getLineno() + ")" : ""), e.getException(), false);
            }
        }
        return result.getOutput();
    }

    private static final int MOST_QUOTED_CHARS = 500;

    /** A template's words may quote a message (raise_exception('bad: ' + content)): the client has them already. */
    private static String cut(String words) {
        if (words.length() <= MOST_QUOTED_CHARS) {
            return words;
        }
        int end = Character.isHighSurrogate(words.charAt(MOST_QUOTED_CHARS - 1)) ? MOST_QUOTED_CHARS - 1 : MOST_QUOTED_CHARS;
        return words.substring(0, end) + "…";
    }

    /** {@code raise_exception(message)} as transformers provides it to templates. */
    public static String raiseException(String message) {
        throw new RaisedException(message);
    }

    /** {@code strftime_now(format)} as transformers provides it (Llama 3.2's template dates its system prompt). */
    public static String strftimeNow(String format) {
        java.time.LocalDateTime now = java.time.LocalDateTime.now();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char f = format.charAt(++i);
            sb.append(switch (f) {
                case 'd' -> String.format("%02d", now.getDayOfMonth());
                case 'm' -> String.format("%02d", now.getMonthValue());
                case 'Y' -> String.valueOf(now.getYear());
                case 'y' -> String.format("%02d", now.getYear() % 100);
                case 'H' -> String.format("%02d", now.getHour());
                case 'M' -> String.format("%02d", now.getMinute());
                case 'S' -> String.format("%02d", now.getSecond());
                case 'j' -> String.format("%03d", now.getDayOfYear());
                case 'b' -> now.getMonth().getDisplayName(java.time.format.TextStyle.SHORT, java.util.Locale.ENGLISH);
                case 'B' -> now.getMonth().getDisplayName(java.time.format.TextStyle.FULL, java.util.Locale.ENGLISH);
                case 'a' -> now.getDayOfWeek().getDisplayName(java.time.format.TextStyle.SHORT, java.util.Locale.ENGLISH);
                case 'A' -> now.getDayOfWeek().getDisplayName(java.time.format.TextStyle.FULL, java.util.Locale.ENGLISH);
                case '%' -> "%";
                default -> "%" + f;
            });
        }
        return sb.toString();
    }

    /** What {@code raise_exception} throws, told apart from Jinjava's own errors. */
    static final class RaisedException extends RuntimeException {
        RaisedException(String message) {
            super(message);
        }
    }
}
