/// One query and Prometheus 2.42's answer to it: its printed form, or its error
/// (`line:column: parse error: message`).
struct ParserCase {
    enum Answer: Equatable {
        case printed(String)
        case error(String)
    }

    let input: String
    let answer: Answer

    init(_ input: String, printed: String) {
        self.input = input
        self.answer = .printed(printed)
    }

    init(_ input: String, error: String) {
        self.input = input
        self.answer = .error(error)
    }
}
