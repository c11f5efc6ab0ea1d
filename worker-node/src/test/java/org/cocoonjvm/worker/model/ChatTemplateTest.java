package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.worker.engine.PromptRejected;
import org.junit.jupiter.api.Test;

class ChatTemplateTest {
    private static ChatMessage msg(String role, String content) {
        return ChatMessage.newBuilder().setRole(role).setContent(content).build();
    }

    @Test
    void chatMlSystemAndUser() {
        ChatTemplate t = new ChatTemplate(RandomModel.CHAT_TEMPLATE, null, "<|im_end|>");
        assertThat(t.render(List.of(msg("system", "Be brief."), msg("user", "Hello!")), true)).isEqualTo(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
        assertThat(t.render(List.of(msg("system", "Be brief."), msg("user", "Hello!")), false)).isEqualTo(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n");
    }

    /** The shape of Llama 3's template: bos_token, whitespace control, trim, and a trailing generation prompt. */
    @Test
    void llama3StyleTemplate() {
        String template = """
                {{- bos_token }}
                {%- for message in messages %}
                    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
                {%- endfor %}
                {%- if add_generation_prompt %}
                    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
                {%- endif %}
                """;
        ChatTemplate t = new ChatTemplate(template, "<|begin_of_text|>", "<|eot_id|>");
        assertThat(t.render(List.of(msg("system", "S"), msg("user", "  hi  ")), true)).isEqualTo(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                        + "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void trimAndLstripBlocksAsTransformersSetsThem() {
        String template = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}";
        ChatTemplate t = new ChatTemplate(template, "", "");
        assertThat(t.renderMaps(List.of(Map.of("role", "user", "content", "a"), Map.of("role", "user", "content", "b")), true))
                .isEqualTo("U:a\nU:b\n");
    }

    @Test
    void raiseExceptionFailsTheRender() {
        String template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok";
        ChatTemplate t = new ChatTemplate(template, "", "");
        assertThat(t.render(List.of(msg("user", "x")), true)).isEqualTo("ok");
        assertThatThrownBy(() -> t.render(List.of(msg("assistant", "x")), true))
                .isInstanceOf(PromptRejected.class)
                .hasMessageContaining("Conversations must start with a user message");
    }

    @Test
    void whatAMessageSays_isNeverRenderedAsTemplateCode() {
        ChatTemplate t = new ChatTemplate(RandomModel.CHAT_TEMPLATE, null, "<|im_end|>");
        String said = "{{ 7*7 }} {{ message }} {% for i in range(3) %}{{ i }}{% endfor %} {{ raise_exception('x') }}";
        assertThat(t.render(List.of(msg("system", said), msg("user", said)), false)).isEqualTo(
                "<|im_start|>system\n" + said + "<|im_end|>\n<|im_start|>user\n" + said + "<|im_end|>\n");
    }

    /** OpenAI's developer role is the system slot; ChatML's default system prompt must not appear beside it. */
    @Test
    void developerMessages_reachTheTemplateAsSystem() {
        ChatTemplate t = new ChatTemplate(RandomModel.CHAT_TEMPLATE, null, "<|im_end|>");
        assertThat(t.render(List.of(msg("developer", "Be brief."), msg("user", "Hello!")), false)).isEqualTo(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n");
    }

    @Test
    void aTemplateThatFails_isAPromptRejectionNamingWhy() {
        ChatTemplate t = new ChatTemplate("{{ messages[0]['content'] * 'x' }}", "", "");
        assertThatThrownBy(() -> t.render(List.of(msg("user", "x")), true))
                .isInstanceOf(PromptRejected.class)
                .hasMessageStartingWith("The model's chat template failed on these messages");
    }

    /**
     * A template in the style of Qwen3's (written for this test): a namespace, a reversed scan for the
     * last real user turn, Python string methods to split reasoning out of earlier assistant turns.
     */
    @Test
    void qwen3StyleTemplateWithPythonStringMethods() {
        String template = """
                {%- set ns = namespace(multi_step=true, last_query=messages|length - 1) %}
                {%- for message in messages[::-1] %}
                    {%- set index = (messages|length - 1) - loop.index0 %}
                    {%- if ns.multi_step and message.role == "user" and not (message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
                        {%- set ns.multi_step = false %}
                        {%- set ns.last_query = index %}
                    {%- endif %}
                {%- endfor %}
                {%- for message in messages %}
                    {%- if message.role == "assistant" %}
                        {%- set content = message.content %}
                        {%- set reasoning = '' %}
                        {%- if '</think>' in content %}
                            {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
                        {%- endif %}
                        {%- if loop.index0 > ns.last_query and reasoning %}
                            {{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content + '<|im_end|>\n' }}
                        {%- else %}
                            {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
                        {%- endif %}
                    {%- else %}
                        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
                    {%- endif %}
                {%- endfor %}
                {%- if add_generation_prompt %}
                    {{- '<|im_start|>assistant\n' }}
                    {%- if enable_thinking is defined and enable_thinking is false %}
                        {{- '<think>\n\n</think>\n\n' }}
                    {%- endif %}
                {%- endif %}""";
        ChatTemplate t = new ChatTemplate(template, null, "<|im_end|>");
        List<ChatMessage> chat = List.of(msg("system", "S"), msg("user", "Q1"),
                msg("assistant", "<think>\nold\n</think>\n\nA1"), msg("user", "Q2"),
                msg("assistant", "<think>\nnew\n</think>\n\nA2"), msg("user", "<tool_response>r</tool_response>"));
        assertThat(t.render(chat, true)).isEqualTo("<|im_start|>system\nS<|im_end|>\n"
                + "<|im_start|>user\nQ1<|im_end|>\n"
                + "<|im_start|>assistant\nA1<|im_end|>\n"
                + "<|im_start|>user\nQ2<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\nnew\n</think>\n\nA2<|im_end|>\n"
                + "<|im_start|>user\n<tool_response>r</tool_response><|im_end|>\n"
                + "<|im_start|>assistant\n");
    }

    @Test
    void pythonStringMethodsAndShims() {
        ChatTemplate t = new ChatTemplate("{{ messages[0].content.split() | join('|') }};{{ 'a,b,,c'.split(',') | length }};"
                + "{{ 'x-y-z'.split('-', 1)[1] }};{{ messages[0].content.upper() }};{{ 'Ab'.lower() }};"
                + "{{ 'hello'.startswith(('x', 'he')) }};{{ 'a b'.title() }};"
                + "{{ 'aXa'.replace('X', 'y') }};{{ '  s '.strip() }}|{{ strftime_now('%Y') | length }}", "", "");
        assertThat(t.render(List.of(msg("user", " one  two ")), false))
                .isEqualTo("one|two;4;y-z; ONE  TWO ;ab;true;A B;aya;s|4");
        assertThat(ChatTemplate.toJinjava("{% for m in messages[::-1] %}{% set ns = namespace(a=1, b=x|length - 1) %}"))
                .isEqualTo("{% for m in messages|reverse %}{% set ns = namespace(a=1, b=(x|length - 1)) %}");
    }
}
