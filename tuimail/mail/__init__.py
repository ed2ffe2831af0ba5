"""Pure message code: nothing here touches the network, the disk or the terminal.

- `sanitize`: every string shown to the user goes through `sanitize_line` / `sanitize_text`.
- `parse`: bytes -> `ParsedMessage` (never raises); `parse_headers` is the fast sync path.
- `render`: `ParsedMessage` -> sanitized `RenderedMessage` for the viewer.
- `threads`: JWZ threading and the store's `thread_key`.
- `compose`: new messages, replies, forwards; strict address lists; CRLF normalization.
- `encoding`, `addresses`, `htmltext`: the tolerant decoders the above are built on.
- `phishing`, `confusables`: offline phishing signs and lookalike detection.

Submodules are imported explicitly (`from tuimail.mail.parse import parse_message`): this
package imports none of them, so `tuimail send` pays only for what it uses.
"""
