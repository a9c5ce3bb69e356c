"""Name, street and place lists for generated data, ordered roughly from most to least common.

Kept in the repository (not taken from Faker) so that a package upgrade never changes the data a seed
produces. Accents are deliberate: search folds them, and the benchmark must exercise that.
"""

from __future__ import annotations

from dataclasses import dataclass


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list (names contain spaces, hyphens and apostrophes, never commas)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


FAMILY: dict[str, tuple[str, ...]] = {
    "fr": _names(
        """
        Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, Simon, Laurent,
        Lefèvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier, Morel, Girard, André,
        Lefebvre, Mercier, Dupont, Lambert, Bonnet, François, Martinez, Legrand, Garnier, Faure,
        Rousseau, Blanc, Guérin, Muller, Henry, Roussel, Nicolas, Perrin, Morin, Mathieu, Clément,
        Gauthier, Dumont, Lopez, Fontaine, Chevalier, Robin, Masson, Sanchez, Gérard, Nguyen, Boyer,
        Denis, Lemaire, Duval, Joly, Gautier, Roger, Roche, Roy, Noël, Meyer, Lucas, Meunier, Jean,
        Pérez, Marchand, Dufour, Blanchard, Marie, Barbier, Brun, Dumas, Brunet, Schmitt, Leroux,
        Colin, Fernandez, Pierre, Renard, Arnaud, Rolland, Caron, Aubert, Giraud, Leclerc, Vidal,
        Bourgeois, Renaud, Lemoine, Picard, Gaillard, Philippe, Leclercq, Lacroix, Fabre, Dupuis,
        Olivier, Rodriguez, Da Silva, Hubert, Louis, Charles, Guillot, Rivière, Le Gall, Guillaume,
        Adam, Rey, Moulin, Gonzalez, Berger, Lecomte, Ménard, Fleury, Deschamps, Carpentier, Julien,
        Bénard, Paris, Maillard, Marchal, Aubry, Vasseur, Le Roux, Renault, Jacquet, Collet, Prévost,
        Poirier, Charpentier, Royer, Huet, Baron, Dupuy, Pons, Paul, Laine, Carré, Breton, Rémy,
        Schneider, Perrot, Guyot, Barré, Marty, Cousin, Hélie, Lefèvre-Dumas, Saint-Martin, D'Alembert,
        Œuvrard
        """
    ),
    "en": _names(
        """
        Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Thomas, Moore,
        Jackson, White, Harris, Martin, Thompson, Young, Allen, King, Wright, Scott, Green, Baker,
        Adams, Nelson, Hill, Campbell, Mitchell, Roberts, Carter, Phillips, Evans, Turner, Parker,
        Collins, Edwards, Stewart, Morris, Murphy, Cook, Rogers, Morgan, Cooper, Peterson, Reed,
        Bailey, Bell, Kelly, Howard, Ward, Cox, Richardson, Wood, Watson, Brooks, Bennett, Gray, James,
        Hughes, Price, Sanders, Myers, Long, Ross, Foster, Powell, Jenkins, Perry, Russell, Sullivan,
        O'Brien, O'Connor, McCarthy, MacDonald, Fitzgerald, Kennedy, Walsh, Byrne, Lynch, Patel, Shah,
        Khan, Singh, Chen, Wang, Li, Kim, Park, Lee, Cohen, Levy
        """
    ),
    "es": _names(
        """
        García, Rodríguez, González, Fernández, López, Martínez, Sánchez, Pérez, Gómez, Martín,
        Jiménez, Ruiz, Hernández, Díaz, Moreno, Muñoz, Álvarez, Romero, Alonso, Gutiérrez, Navarro,
        Torres, Domínguez, Vázquez, Ramos, Gil, Ramírez, Serrano, Blanco, Molina, Morales, Suárez,
        Ortega, Delgado, Castro, Ortiz, Rubio, Marín, Sanz, Núñez, Iglesias, Medina, Garrido, Cortés,
        Castillo, Santos, Lozano, Guerrero, Cano, Prieto, Méndez, Cruz, Calvo, Gallego, Vidal, León,
        Herrera, Peña, Ibáñez
        """
    ),
    "it": _names(
        """
        Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco, Bruno, Gallo,
        Conti, De Luca, Mancini, Costa, Giordano, Rizzo, Lombardi, Moretti, Barbieri, Fontana, Santoro,
        Mariani, Rinaldi, Caruso, Ferrara, Galli, Martini, Leone, Longo, Gentile, Martinelli, Vitale,
        Lombardo, Serra, Coppola, De Santis, D'Angelo, Marchetti, Parisi, Villa, Conte, Ferraro, Ferri,
        Fabbri, Bianco, Niccolò
        """
    ),
    "de": _names(
        """
        Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, Schäfer,
        Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Braun, Krüger,
        Hofmann, Hartmann, Lange, Schmitt, Werner, Schmitz, Krause, Meier, Lehmann, Schmid, Schulze,
        Maier, Köhler, Herrmann, König, Walter, Mayer, Huber, Kaiser, Fuchs, Peters, Lang, Scholz,
        Möller, Weiß, Jung, Hahn, Schubert, Vogel
        """
    ),
    "pt": _names(
        """
        Silva, Santos, Ferreira, Pereira, Oliveira, Costa, Rodrigues, Martins, Jesus, Sousa, Fernandes,
        Gonçalves, Gomes, Lopes, Marques, Alves, Almeida, Ribeiro, Pinto, Carvalho, Teixeira, Moreira,
        Correia, Mendes, Nunes, Soares, Vieira, Monteiro, Cardoso, Rocha, Raposo, Neves, Coelho, Cruz,
        Cunha, Pires, Ramos, Reis, Simões, Antunes, Matos, Fonseca, Machado, Araújo, Barbosa, Tavares,
        Lourenço, Conceição
        """
    ),
    "ar": _names(
        """
        Benali, Haddad, Mansour, Belkacem, Cherif, Amrani, Bouaziz, El Amrani, Saïdi, Benmoussa,
        Khelifi, Mebarki, Ziani, Hamdi, Bakri, Nasser, Aït Ahmed, Boukhari, Benyahia, Lahlou, Tazi,
        Chaoui, Ouali, Belhadj, Gharbi, Jaziri, Toumi, Ferhat
        """
    ),
}

GIVEN_FEMALE: dict[str, tuple[str, ...]] = {
    "fr": _names(
        """
        Marie, Camille, Léa, Manon, Chloé, Emma, Inès, Sarah, Julie, Laura, Pauline, Céline, Isabelle,
        Nathalie, Sophie, Sandrine, Stéphanie, Valérie, Aurélie, Émilie, Élodie, Audrey, Mélanie,
        Virginie, Caroline, Hélène, Anne, Claire, Lucie, Juliette, Clémence, Margaux, Océane, Agathe,
        Zoé, Anaïs, Noémie, Maëlle, Gaëlle, Amélie, Cécile, Béatrice, Françoise, Geneviève, Brigitte,
        Sylvie, Christine, Delphine, Marine, Charlotte, Louise, Alice, Eugénie, Joséphine, Mathilde,
        Héloïse, Aude, Marie-Claire, Anne-Sophie, Marie-Hélène
        """
    ),
    "en": _names(
        """
        Jennifer, Jessica, Sarah, Emily, Ashley, Amanda, Elizabeth, Michelle, Lauren, Megan, Rachel,
        Stephanie, Nicole, Hannah, Olivia, Emma, Sophia, Grace, Chloe, Lucy, Charlotte, Amelia, Isla,
        Rebecca, Katherine, Victoria, Samantha, Natalie, Heather, Melissa, Kimberly, Laura, Amy, Holly,
        Zoe, Abigail, Madison, Priya, Aisha, Mei, Siobhán, Niamh, Aoife, Renée, Zoë
        """
    ),
    "es": _names(
        """
        María, Lucía, Paula, Laura, Marta, Sofía, Carmen, Ana, Isabel, Elena, Cristina, Raquel, Alba,
        Andrea, Beatriz, Pilar, Rocío, Nuria, Mónica, Inés, Verónica, Begoña, Ainhoa, Marisol, Leire,
        Nerea, Irene, Julia, Noelia, Ángela
        """
    ),
    "it": _names(
        """
        Giulia, Francesca, Chiara, Sara, Martina, Valentina, Alessia, Federica, Elisa, Silvia, Paola,
        Roberta, Simona, Giorgia, Alessandra, Elena, Laura, Ilaria, Beatrice, Serena, Claudia, Noemi,
        Lucrezia, Benedetta
        """
    ),
    "de": _names(
        """
        Anna, Julia, Laura, Lena, Sarah, Katharina, Lisa, Hannah, Sophie, Lea, Johanna, Franziska,
        Sabine, Petra, Claudia, Andrea, Susanne, Ursula, Jana, Jülide, Märta, Anja, Birgit, Stefanie
        """
    ),
    "pt": _names(
        """
        Maria, Ana, Beatriz, Mariana, Inês, Carolina, Joana, Sofia, Rita, Catarina, Leonor, Matilde,
        Francisca, Margarida, Luísa, Patrícia, Sónia, Cláudia, Conceição, Fátima, Graça, Teresa
        """
    ),
    "ar": _names(
        """
        Yasmine, Sofia, Leïla, Nour, Amina, Salma, Sarah, Lina, Inès, Meriem, Fatima, Khadija, Samira,
        Nadia, Rania, Imane, Hajar, Zineb, Aïcha, Souad
        """
    ),
}

GIVEN_MALE: dict[str, tuple[str, ...]] = {
    "fr": _names(
        """
        Thomas, Nicolas, Julien, Maxime, Alexandre, Antoine, Pierre, Romain, Sébastien, Guillaume,
        Mathieu, François, Jérôme, Stéphane, Frédéric, Hugo, Lucas, Théo, Benoît, Grégoire, Loïc,
        Hervé, Éric, Jean-Marc, Jean-François
        """
    ),
    "en": _names(
        """
        James, John, Michael, David, Daniel, Matthew, Christopher, Andrew, Ryan, Oliver, Harry, Jack,
        William, Benjamin, Samuel, Ethan, Noah, Liam, Raj, Sean
        """
    ),
    "es": _names("Javier, Alejandro, Daniel, Pablo, David, Sergio, Carlos, Jorge, Álvaro, Iñigo"),
    "it": _names("Marco, Luca, Andrea, Matteo, Alessandro, Lorenzo, Davide, Simone, Niccolò"),
    "de": _names("Lukas, Jonas, Felix, Maximilian, Tobias, Jan, Stefan, Jürgen, Björn"),
    "pt": _names("João, Pedro, Tiago, Miguel, Rui, Gonçalo, André, Sebastião"),
    "ar": _names("Mohamed, Yassine, Karim, Mehdi, Amine, Rachid, Sofiane, Anis"),
}

STREETS: dict[str, tuple[str, ...]] = {
    "FR": _names(
        """
        rue de la République, avenue Victor-Hugo, boulevard Saint-Michel, rue du Faubourg-Saint-Honoré,
        rue des Écoles, place de l'Église, allée des Tilleuls, rue Émile-Zola, quai de la Tournelle,
        rue Pasteur, avenue Jean-Jaurès, rue de la Gare, chemin des Vignes, rue Molière
        """
    ),
    "BE": _names("rue Neuve, avenue Louise, chaussée de Wavre, rue du Marché, boulevard d'Avroy"),
    "CH": _names(
        """
        rue du Rhône, avenue de la Gare, rue de Lausanne, chemin des Crêts, quai du Mont-Blanc
        """
    ),
    "CA": _names(
        """
        rue Sainte-Catherine, boulevard Saint-Laurent, avenue du Mont-Royal, rue Saint-Denis
        """
    ),
    "US": _names(
        """
        Hudson St, Bleecker St, Main St, Oak Ave, Maple Dr, Sunset Blvd, Ocean Dr, Elm St, Park Ave,
        Lake Shore Dr, Collins Ave, Westheimer Rd
        """
    ),
    "GB": _names("High Street, Station Road, Church Lane, King's Road, Victoria Road, Deansgate"),
    "ES": _names(
        """
        Calle Mayor, Gran Vía, Calle de Alcalá, Passeig de Gràcia, Calle del Pez, Avenida Diagonal
        """
    ),
    "IT": _names(
        """
        Via Roma, Corso Buenos Aires, Via del Corso, Via Garibaldi, Piazza Duomo, Via Manzoni
        """
    ),
    "DE": _names("Hauptstraße, Schillerstraße, Goethestraße, Kurfürstendamm, Maximilianstraße"),
    "PT": _names("Avenida da Liberdade, Rua Augusta, Rua do Carmo, Rua Garrett, Avenida de Roma"),
}


@dataclass(frozen=True)
class Place:
    """Where a clinic is, and what its patients are like."""

    city: str
    country: str
    time_zone: str
    currency: str
    jurisdiction: str
    origin: str  # the most common origin of patients' names (a key of FAMILY)
    french_share: float  # share of patients preferring French (the other language is English)
    phone: str  # a format: "#" is a random digit
    postal: str  # a format: "#" is a random digit
    email_domains: tuple[str, ...] = ("example.com", "example.org", "example.net")


PLACES: tuple[Place, ...] = (
    Place("Paris", "FR", "Europe/Paris", "EUR", "FR", "fr", 0.92, "+33 6 ## ## ## ##", "750##"),
    Place("New York", "US", "America/New_York", "USD", "US-NY", "en", 0.04, "+1 212 555 01##", "100##"),
    Place("Lyon", "FR", "Europe/Paris", "EUR", "FR", "fr", 0.95, "+33 6 ## ## ## ##", "6900#"),
    Place("London", "GB", "Europe/London", "GBP", "GB", "en", 0.03, "+44 7700 900###", "W1# #AA"),
    Place("Montréal", "CA", "America/Toronto", "CAD", "CA-QC", "fr", 0.65, "+1 514 555 01##", "H2# #A#"),
    Place("Bruxelles", "BE", "Europe/Brussels", "EUR", "BE", "fr", 0.7, "+32 470 ## ## ##", "10##"),
    Place("Genève", "CH", "Europe/Zurich", "CHF", "CH", "fr", 0.8, "+41 79 ### ## ##", "12##"),
    Place("Marseille", "FR", "Europe/Paris", "EUR", "FR", "fr", 0.93, "+33 6 ## ## ## ##", "130##"),
    Place("Miami", "US", "America/New_York", "USD", "US-FL", "es", 0.01, "+1 305 555 01##", "331##"),
    Place("Madrid", "ES", "Europe/Madrid", "EUR", "ES", "es", 0.05, "+34 6## ### ###", "280##"),
    Place("Milano", "IT", "Europe/Rome", "EUR", "IT", "it", 0.05, "+39 3## ### ####", "201##"),
    Place("Bordeaux", "FR", "Europe/Paris", "EUR", "FR", "fr", 0.96, "+33 7 ## ## ## ##", "330##"),
    Place("Los Angeles", "US", "America/Los_Angeles", "USD", "US-CA", "en", 0.02, "+1 310 555 01##", "900##"),
    Place("München", "DE", "Europe/Berlin", "EUR", "DE", "de", 0.03, "+49 15# #######", "80###"),
    Place("Lisboa", "PT", "Europe/Lisbon", "EUR", "PT", "pt", 0.1, "+351 91# ### ###", "1###-###"),
    Place("Nice", "FR", "Europe/Paris", "EUR", "FR", "fr", 0.85, "+33 6 ## ## ## ##", "060##"),
    Place("Lille", "FR", "Europe/Paris", "EUR", "FR", "ar", 0.9, "+33 6 ## ## ## ##", "590##"),
    Place("Chicago", "US", "America/Chicago", "USD", "US-IL", "en", 0.02, "+1 312 555 01##", "606##"),
    Place("Barcelona", "ES", "Europe/Madrid", "EUR", "ES", "es", 0.06, "+34 6## ### ###", "080##"),
    Place("Toulouse", "FR", "Europe/Paris", "EUR", "FR", "fr", 0.95, "+33 6 ## ## ## ##", "310##"),
)

# Other origins mixed into every city's patients (a chain's cities are international).
ORIGINS: tuple[str, ...] = tuple(FAMILY)
