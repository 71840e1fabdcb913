package messages_test

import (
	"fmt"

	"github.com/ceylon-go/ceylon/messages"
)

// Greeting is an application message. Its kind is a constant, so the Go type
// can be renamed without breaking agents that still run the old version.
type Greeting struct {
	Text string `msgpack:"text"`
}

func (Greeting) Kind() string { return "example.greeting" }

func Example() {
	reg := messages.NewRegistry()
	messages.MustRegister[Greeting](reg)

	env, _ := messages.NewEnvelope(1, "sender-id", Greeting{Text: "hello"})
	wire := env.Encode()

	got, _ := messages.DecodeEnvelope(wire)
	msg, _ := reg.Decode(got.Kind, got.Body)
	fmt.Printf("%s: %+v\n", got.Kind, msg)
	// Output: example.greeting: {Text:hello}
}

func ExampleTask_Validate() {
	t := messages.Task{ID: "t1", Type: "worker", Description: "too hard", Difficulty: 12}
	fmt.Println(t.Validate())
	// Output: task "t1": messages: difficulty out of range 1-10: 12
}
