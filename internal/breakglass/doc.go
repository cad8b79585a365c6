// Package breakglass is the engine of the BreakGlass kind, and the one
// place the other controllers ask whether a BreakGlass covers what they
// are about to write.
//
// Coverage is read from a namespace annotation (NamespaceAnnotation) rather
// than recomputed from the BreakGlass's scope: detaching injection removes
// the labels that a namespace selector or mesh discovery matches on, so a
// recomputed scope would shrink as the BreakGlass engages.
package breakglass
